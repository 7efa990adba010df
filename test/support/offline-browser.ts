import type { BrowserContext } from 'playwright-core';

/**
 * Cuts a browser context off from every host but this machine: a request elsewhere is aborted
 * and its URL recorded in the returned list (the tests fail when it is not empty).
 */
export async function refuseOtherHosts(context: BrowserContext): Promise<string[]> {
  const offHost: string[] = [];
  const local = (url: string) => ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (local(url)) return route.continue();
    offHost.push(url);
    return route.abort('internetdisconnected');
  });
  context.on('request', (request) => {
    const url = request.url();
    if (/^(https?|wss?):/.test(url) && !local(url) && !offHost.includes(url)) offHost.push(url);
  });
  return offHost;
}
