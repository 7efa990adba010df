// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { refuseOtherHosts } from './support/offline-browser.js';
import { startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

// A new user's first minutes, in a real browser with the network cut off: GraphiQL loads
// from the installed packages alone, the key goes in the Headers tab, the starter's
// operations provision a tenant, list tenants and stream its connection usage.
// Debian's chromium, driven by playwright-core (no browser download). Without chromium
// this file skips, except with CI=true, where that is a failure (as for PgBouncer).
// Screenshots go to test-artifacts/; UPDATE_SCREENSHOTS=1 also refreshes docs/graphiql.png.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const installed = existsSync(CHROMIUM);
const skip = installed || process.env.CI === 'true' ? false : `${CHROMIUM} is missing (apt-get install chromium); with CI=true this fails`;
const ARTIFACTS = path.resolve('test-artifacts');

let t: TestTenantry;
let userDataDir: string;
before(async () => {
  t = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200' } });
  userDataDir = await mkdtemp(path.join(tmpdir(), 'tenantry-chromium-'));
});
after(async () => {
  await t?.cleanup();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

test('the GraphiQL page carries its scripts: no script, style or font is loaded from another host', async () => {
  const res = await fetch(`${t.url}/graphql`, { headers: { accept: 'text/html' } });
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /<title>Tenantry<\/title>/);
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href="https?:|unpkg\.com|cdn\.jsdelivr\.net/);
  assert.match(html, /mutation ProvisionTenant/);
});

test('the unchanged GraphiQL header placeholder is told to put the API key in the Headers tab', async () => {
  const res = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer <paste your admin key>' },
    body: JSON.stringify({ query: '{ viewer { role } }' }),
  });
  const body = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
  assert.equal(body.errors[0]!.extensions.code, 'UNAUTHENTICATED');
  assert.match(body.errors[0]!.message, /put your API key in the Headers tab/i);
  // A header that is merely malformed keeps its own message.
  const malformed = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Basic dXNlcjpwdw==' },
    body: JSON.stringify({ query: '{ viewer { role } }' }),
  });
  const other = (await malformed.json()) as typeof body;
  assert.match(other.errors[0]!.message, /must be "Bearer <key>"/);
});

/** Pastes text where the keyboard focus is (Monaco would auto-close quotes and braces typed one by one). */
async function paste(page: Page, text: string): Promise<void> {
  await page.evaluate((value) => {
    const data = new DataTransfer();
    data.setData('text/plain', value);
    document.activeElement!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, text);
}

/** Runs one of the starter's named operations the way a user does: ▶, then its name. */
async function runOperation(page: Page, name: string): Promise<void> {
  await page.locator('.graphiql-execute-button').click();
  await page.getByRole('menuitem', { name, exact: true }).click();
}

const result = (page: Page) => page.locator('.result-window');

/** What an editor shows (Monaco renders spaces as no-break spaces). */
async function textOf(locator: Locator): Promise<string> {
  return (await locator.innerText()).replace(/\u00a0/g, ' ');
}

test('offline: GraphiQL opens, takes the key in the Headers tab, provisions a tenant, lists it and streams its usage', { skip, timeout: 240_000 }, async () => {
  assert.ok(installed, `CI=true and ${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
  await mkdir(ARTIFACTS, { recursive: true });
  const context: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
  });
  // Anything the page asks of another host is refused and remembered: the test fails on it.
  const offHost = await refuseOtherHosts(context);
  let failure: unknown;
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${t.url}/graphql`);
    await page.locator('.graphiql-execute-button').waitFor({ timeout: 60_000 });
    await page.getByText('mutation ProvisionTenant').first().waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'graphiql-1-starter.png') });

    // The unchanged placeholder: the answer says where the key goes.
    await runOperation(page, 'Tenants');
    await result(page).getByText('Headers tab').waitFor({ timeout: 30_000 });

    // The key, in the Headers tab, replacing the placeholder.
    const headersTab = page.getByRole('button', { name: 'Headers', exact: true });
    assert.match((await headersTab.getAttribute('class')) ?? '', /active/, 'the Headers tab is open from the start');
    const headers = page.locator('.graphiql-editor').nth(2);
    await headers.click();
    await page.keyboard.press('Control+A');
    await paste(page, JSON.stringify({ Authorization: `Bearer ${t.adminKey}` }, null, 2));
    await headers.getByText(t.adminKey).waitFor({ timeout: 10_000 });
    assert.match(await textOf(headers), new RegExp(`"Bearer ${t.adminKey}"`));

    await runOperation(page, 'ProvisionTenant');
    await result(page).getByText('"COMPATIBLE"').waitFor({ timeout: 120_000 });
    const provisioned = await textOf(result(page));
    assert.match(provisioned, /"status": "ACTIVE"/);
    assert.match(provisioned, /"userErrors": \[\]/);
    const screenshot = path.join(ARTIFACTS, 'graphiql-2-provisioned.png');
    await page.screenshot({ path: screenshot });
    if (process.env.UPDATE_SCREENSHOTS === '1') await copyFile(screenshot, path.resolve('docs/graphiql.png'));
    // The server agrees: the tenant exists and is ACTIVE.
    const check = await t.gql('{ tenant(slug: "acme-dev") { status quota { maxConnections } } }');
    assert.deepEqual(check.data.tenant, { status: 'ACTIVE', quota: { maxConnections: 20 } });

    await runOperation(page, 'Tenants');
    await result(page).getByText('"edges"').waitFor({ timeout: 30_000 });
    assert.match(await textOf(result(page)), /"slug": "acme-dev"/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'graphiql-3-tenants.png') });

    await runOperation(page, 'ConnectionUsage');
    await result(page).getByText('"usagePercent"').waitFor({ timeout: 60_000 });
    const usage = await textOf(result(page));
    assert.match(usage, /"connectionUsage"/);
    assert.match(usage, /"max": 20/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'graphiql-4-subscription.png') });
    // Running, the button stops the subscription.
    assert.match((await page.locator('.graphiql-execute-button').getAttribute('aria-label')) ?? '', /Stop/);
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.graphiql-execute-button[aria-label^="Execute"]').waitFor();

    assert.deepEqual(pageErrors, []);
  } catch (err) {
    failure = err;
  } finally {
    await context.close();
  }
  // Checked first: a page waiting for the network is the likeliest reason for anything else failing.
  assert.deepEqual(offHost, [], 'the page asked for something off this host');
  if (failure) throw failure;
});
