// @test-scope once: CORS headers and the WebSocket upgrade's Origin check: nothing of it depends on the server or the control plane's privileges.
// Issue 14: CORS allowed any origin with credentials, and WebSocket accepted any origin, in
// production too, with no setting. CORS_ORIGINS is the allow-list (default: any in
// development; in production none but the service's own origin), and the WebSocket upgrade
// checks the Origin header against it (browsers always send one; other clients need not).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

const EVIL = 'https://evil.example';
const CONSOLE = 'https://console.example.com';

let dev: TestTenantry;
let production: TestTenantry;
let listed: TestTenantry;

before(async () => {
  dev = await startTestTenantry();
  production = await startTestTenantry({ shareWith: dev, env: { NODE_ENV: 'production' } });
  listed = await startTestTenantry({ shareWith: dev, env: { NODE_ENV: 'production', CORS_ORIGINS: `${CONSOLE}, http://localhost:5173` } });
});
after(async () => {
  await listed?.stop();
  await production?.stop();
  await dev?.cleanup();
});

/** A browser's preflight, then its POST, from `origin`: the CORS headers of each. */
async function fromBrowser(t: TestTenantry, origin: string) {
  const preflight = await fetch(`${t.url}/graphql`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
  const post = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/json', authorization: `Bearer ${t.adminKey}` },
    body: JSON.stringify({ query: '{ viewer { role } }' }),
  });
  await post.body?.cancel();
  const cors = (res: Response) => ({ origin: res.headers.get('access-control-allow-origin'), credentials: res.headers.get('access-control-allow-credentials') });
  return { preflight: cors(preflight), post: cors(post) };
}

/** The status of a WebSocket upgrade on /graphql (101 when it opened), sending `origin` if given. */
function upgrade(t: TestTenantry, origin?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${t.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', origin ? { origin } : {});
    socket.on('open', () => {
      socket.close(1000);
      resolve(101);
    });
    socket.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      socket.terminate();
    });
    socket.on('error', (err) => {
      if (!/Unexpected server response/.test(String(err))) reject(err);
    });
  });
}

describe('production, CORS_ORIGINS unset: no origin but the service\'s own', () => {
  test('another origin gets no CORS headers, on the preflight or the request', async () => {
    assert.deepEqual(await fromBrowser(production, EVIL), { preflight: { origin: null, credentials: null }, post: { origin: null, credentials: null } });
  });

  test('the service\'s own origin is allowed', async () => {
    const own = new URL(production.url).origin;
    assert.deepEqual((await fromBrowser(production, own)).post, { origin: own, credentials: 'true' });
  });

  test('a WebSocket upgrade from another origin is refused with 403; without an Origin (not a browser) or from its own it opens', async () => {
    assert.equal(await upgrade(production, EVIL), 403);
    assert.equal(await upgrade(production, 'null'), 403);
    assert.equal(await upgrade(production), 101);
    assert.equal(await upgrade(production, new URL(production.url).origin), 101);
  });
});

describe('production, CORS_ORIGINS set', () => {
  test('a listed origin is allowed, with credentials; any other is not', async () => {
    for (const origin of [CONSOLE, 'http://localhost:5173']) {
      assert.deepEqual((await fromBrowser(listed, origin)).preflight, { origin, credentials: 'true' }, origin);
      assert.deepEqual((await fromBrowser(listed, origin)).post, { origin, credentials: 'true' }, origin);
      assert.equal(await upgrade(listed, origin), 101, origin);
    }
    assert.deepEqual((await fromBrowser(listed, EVIL)).post, { origin: null, credentials: null });
    assert.equal(await upgrade(listed, EVIL), 403);
    assert.equal(await upgrade(listed, `${CONSOLE}.evil.example`), 403);
  });
});

describe('development, CORS_ORIGINS unset: any origin, never with credentials', () => {
  test('any origin may read responses and open a WebSocket', async () => {
    assert.deepEqual(await fromBrowser(dev, EVIL), { preflight: { origin: EVIL, credentials: null }, post: { origin: EVIL, credentials: null } });
    assert.equal(await upgrade(dev, EVIL), 101);
  });
});
