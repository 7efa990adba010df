// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { freePort } from './support/free-port.js';

// `npm start` as a new user runs it: no DATABASE_URL, so an embedded PostgreSQL 18
// under TENANTRY_HOME, an admin key printed on the first start, a clean stop on a signal.

const run = promisify(execFile);
const home = await mkdtemp(path.join(tmpdir(), 'tenantry-start-'));
after(() => rm(home, { recursive: true, force: true }));


const pgPort = await freePort();

async function start(): Promise<{ child: ChildProcess; output: () => string; url: string }> {
  const port = await freePort();
  const env: Record<string, string> = { ...(process.env as Record<string, string>), TENANTRY_HOME: home, EMBEDDED_PG_PORT: String(pgPort), PORT: String(port) };
  delete env.DATABASE_URL;
  delete env.ADMIN_API_KEY;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (out.includes('Tenantry is ready')) {
        clearInterval(timer);
        resolve();
      }
    }, 100);
    child.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`exited with ${code}: ${out}`));
    });
  });
  return { child, output: () => out, url: `http://127.0.0.1:${port}/graphql` };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}

async function postgresRunningOn(dataDir: string): Promise<boolean> {
  const { stdout } = await run('ps', ['-eo', 'args']);
  return stdout.split('\n').some((line) => line.includes('postgres') && line.includes(dataDir));
}

const gql = async (url: string, key: string, query: string) => {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query }) });
  return (await res.json()) as any;
};

test('first start: embedded PostgreSQL, a printed admin key, GraphiQL, a tenant reachable with psql, a clean stop', async () => {
  const first = await start();
  const key = /tnry_[0-9a-f]{64}/.exec(first.output())?.[0];
  assert.ok(key, first.output());
  assert.match(first.output(), /GraphiQL at http:\/\/127\.0\.0\.1:\d+\/graphql/);

  const page = await fetch(first.url, { headers: { accept: 'text/html' } });
  assert.match(await page.text(), /GraphiQL|graphiql/);

  const r = await gql(first.url, key, 'mutation { provisionTenant(input: { slug: "first-customer", displayName: "First" }) { connectionString userErrors { code } } }');
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  const { stdout } = await run('psql', [r.data.provisionTenant.connectionString, '-Atc', 'SELECT current_user || \'@\' || current_database()']);
  assert.equal(stdout.trim(), 'tenant_first_customer@tenant_first_customer');

  assert.equal(await stop(first.child, 'SIGTERM'), 0);
  assert.equal(await postgresRunningOn(path.join(home, 'pgdata')), false, 'the embedded server stopped with the service');

  // Second start: same data, no new key, the first key still works.
  const second = await start();
  assert.doesNotMatch(second.output(), /tnry_[0-9a-f]{64}/);
  const again = await gql(second.url, key, '{ tenant(slug: "first-customer") { status } viewer { role } }');
  assert.deepEqual(again.data, { tenant: { status: 'ACTIVE' }, viewer: { role: 'ADMIN' } });
  assert.equal(await stop(second.child, 'SIGINT'), 0);
  assert.equal(await postgresRunningOn(path.join(home, 'pgdata')), false);
});
