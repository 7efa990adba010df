// @test-scope once: the dashboard's files as HTTP serves them: nothing of it depends on the server or the control plane's privileges.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { BUILT_DASHBOARD_DIR } from '../src/http/dashboard.js';
import { startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const INDEX = '<!doctype html><title>Tenantry</title><script type="module" src="/dashboard/assets/app-3f9a1c.js"></script>';
const SCRIPT = `export const greeting = ${JSON.stringify('hello dashboard '.repeat(500))};\n`;
const SECRET = 'not for the dashboard';

let work: string;
let dist: string;
let t: TestTenantry;

/** A GET with the path sent exactly as written (fetch would normalise ../ away before sending). */
function rawGet(base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const { hostname, port } = new URL(base);
  return new Promise((done, fail) => {
    request({ hostname, port, path, headers, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    })
      .on('error', fail)
      .end();
  });
}

function assertDashboardHeaders(headers: Record<string, string | string[] | undefined>, what: string): void {
  assert.equal(headers['content-security-policy'], CSP, what);
  assert.equal(headers['x-content-type-options'], 'nosniff', what);
  assert.equal(headers['referrer-policy'], 'no-referrer', what);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'tenantry-dashboard-'));
  dist = join(work, 'dist');
  await mkdir(join(dist, 'assets'), { recursive: true });
  await writeFile(join(dist, 'index.html'), INDEX);
  await writeFile(join(dist, 'assets', 'app-3f9a1c.js'), SCRIPT);
  await writeFile(join(work, 'secret.txt'), SECRET);
  await symlink(join(work, 'secret.txt'), join(dist, 'assets', 'leak.txt'));
  t = await startTestTenantry({ env: { NODE_ENV: 'development', DASHBOARD_DIR: dist } });
});
after(async () => {
  await t?.cleanup();
  await rm(work, { recursive: true, force: true });
});

describe('the dashboard at /dashboard/', () => {
  test('the built app is looked for in the package, not the working directory', () => {
    assert.equal(resolve(BUILT_DASHBOARD_DIR), resolve(import.meta.dirname, '..', 'dashboard', 'dist'));
  });

  test('/dashboard redirects to /dashboard/, which serves index.html, revalidated every time, with the strict headers', async () => {
    const moved = await rawGet(t.url, '/dashboard?x=1');
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.location, '/dashboard/?x=1');
    assertDashboardHeaders(moved.headers, 'redirect');

    const page = await rawGet(t.url, '/dashboard/');
    assert.equal(page.status, 200);
    assert.equal(page.body.toString(), INDEX);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['cache-control'], 'no-cache');
    assertDashboardHeaders(page.headers, 'index.html');
  });

  test('hashed assets are immutable and compressed (brotli or gzip, as the client takes them)', async () => {
    const plain = await rawGet(t.url, '/dashboard/assets/app-3f9a1c.js');
    assert.equal(plain.status, 200);
    assert.equal(plain.body.toString(), SCRIPT);
    assert.match(String(plain.headers['content-type']), /^text\/javascript/);
    assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(plain.headers['content-encoding'], undefined);
    assertDashboardHeaders(plain.headers, 'asset');

    const br = await rawGet(t.url, '/dashboard/assets/app-3f9a1c.js', { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.ok(br.body.length < SCRIPT.length / 10, `compressed to ${br.body.length} bytes`);
    assert.equal(brotliDecompressSync(br.body).toString(), SCRIPT);
    assert.equal(br.headers.vary, 'Accept-Encoding');

    const gz = await rawGet(t.url, '/dashboard/assets/app-3f9a1c.js', { 'accept-encoding': 'gzip, br;q=0' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gz.body).toString(), SCRIPT);

    const again = await rawGet(t.url, '/dashboard/assets/app-3f9a1c.js', { 'accept-encoding': 'br', 'if-none-match': String(br.headers.etag) });
    assert.equal(again.status, 304);
  });

  test('client routes get index.html; a missing asset is a 404, not HTML', async () => {
    for (const path of ['/dashboard/tenants/acme', '/dashboard/fleet', '/dashboard/tenants/']) {
      const page = await rawGet(t.url, path);
      assert.equal(page.status, 200, path);
      assert.equal(page.body.toString(), INDEX, path);
    }
    for (const path of ['/dashboard/assets/app-000000.js', '/dashboard/favicon.ico']) {
      const missing = await rawGet(t.url, path);
      assert.equal(missing.status, 404, path);
      assertDashboardHeaders(missing.headers, path);
    }
  });

  test('nothing outside the built directory is ever served', async () => {
    const paths = [
      '/dashboard/../package.json',
      '/dashboard/%2e%2e/package.json',
      '/dashboard/..%2fpackage.json',
      '/dashboard/..%2F..%2Fsecret.txt',
      '/dashboard/assets/..%2f..%2fsecret.txt',
      '/dashboard/%2e%2e%2fsecret.txt',
      '/dashboard/..%5csecret.txt',
      '/dashboard/assets%2f..%2f..%2fsecret.txt',
      '/dashboard/assets/leak.txt',
      '/dashboard/%2fetc%2fpasswd',
      '/dashboard//etc/passwd',
      '/dashboard/.%2e/secret.txt',
      '/dashboard/%00',
      '/dashboard/%E0%A4%A',
    ];
    for (const path of paths) {
      const r = await rawGet(t.url, path);
      assert.ok([400, 404].includes(r.status), `${path}: ${r.status}`);
      assert.doesNotMatch(r.body.toString(), /not for the dashboard|"name": "tenantry"|root:/, path);
    }
  });

  test('only GET and HEAD', async () => {
    const post = await fetch(`${t.url}/dashboard/`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    const head = await rawGet(t.url, '/dashboard/', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), INDEX.length);
    assert.equal(head.body.length, 0);
  });

  test('not built: 503 saying how to build it', async () => {
    await rename(join(dist, 'index.html'), join(dist, 'index.html.away'));
    try {
      const r = await rawGet(t.url, '/dashboard/tenants/acme');
      assert.equal(r.status, 503);
      assert.match(r.body.toString(), /the dashboard is not built: npm run build:dashboard/);
      assertDashboardHeaders(r.headers, '503');
    } finally {
      await rename(join(dist, 'index.html.away'), join(dist, 'index.html'));
    }
    assert.equal((await rawGet(t.url, '/dashboard/')).status, 200, 'a build made while running is served at once');
  });

  test('production: off (404) unless DASHBOARD=on', async () => {
    const off = await startTestTenantry({ env: { NODE_ENV: 'production', DASHBOARD_DIR: dist } });
    try {
      for (const path of ['/dashboard', '/dashboard/', '/dashboard/assets/app-3f9a1c.js']) assert.equal((await rawGet(off.url, path)).status, 404, path);
    } finally {
      await off.cleanup();
    }
    const on = await startTestTenantry({ env: { NODE_ENV: 'production', DASHBOARD: 'on', DASHBOARD_DIR: dist } });
    try {
      const page = await rawGet(on.url, '/dashboard/');
      assert.equal(page.status, 200);
      assert.equal(page.body.toString(), INDEX);
      assertDashboardHeaders(page.headers, 'production');
    } finally {
      await on.cleanup();
    }
  });
});
