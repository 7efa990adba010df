// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
// Issues 9 and 11: the HTTP port is bound before anything else. A start on a busy port fails
// before it touches PostgreSQL, the pooler or the admin key (no key is printed or stored; the
// next good start prints one), and a second instance with the same configuration leaves the
// first one - and the PgBouncer it owns - intact.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { findPgBouncer } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { freePort } from './support/free-port.js';
import { until } from './support/subscriptions.js';
import { controlPlaneUrl, dropEverythingOf, testServerUrl } from './support/test-tenantry.js';

const id = randomBytes(4).toString('hex');
const controlDatabase = `tenantry_t${id}`;
const prefix = `t${id}_`;
let admin: pg.Pool;
let dir: string;
const children = new Set<ChildProcess>();

before(async () => {
  admin = new pg.Pool({ connectionString: testServerUrl(), max: 2 });
  dir = await mkdtemp(path.join(tmpdir(), 'tenantry-second-'));
  await chmod(dir, 0o711); // PgBouncer runs as postgres when we are root
});
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await dropEverythingOf(admin, { controlDatabase, prefix });
  await admin.query(`DROP ROLE IF EXISTS "${controlDatabase}_pooler"`).catch(() => undefined);
  await admin.end();
  await rm(dir, { recursive: true, force: true });
});

/** `node src/main.ts` (what `npm start` runs) with this configuration; resolves when it serves or exits. */
async function main(env: Record<string, string>): Promise<{ child: ChildProcess; output: () => string; exitCode: number | null }> {
  const full: Record<string, string> = {
    ...(process.env as Record<string, string>),
    DATABASE_URL: controlPlaneUrl(),
    CONTROL_DATABASE: controlDatabase,
    TENANT_DB_PREFIX: prefix,
    OVERCOMMIT_FACTOR: '50',
    LOG_LEVEL: 'warn',
    ...env,
  };
  delete full.ADMIN_API_KEY;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: full, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exitCode = await new Promise<number | null>((resolve) => {
    const timer = setInterval(() => {
      if (out.includes('Tenantry is ready')) {
        clearInterval(timer);
        resolve(null);
      }
    }, 100);
    child.once('exit', (code) => {
      clearInterval(timer);
      resolve(code ?? -1);
    });
  });
  return { child, output: () => out, exitCode };
}

async function adminKeys(): Promise<number> {
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [controlDatabase]);
  if (!exists.rowCount) return 0;
  const c = new pg.Client({ connectionString: testServerUrl().replace(/\/[^/]*$/, `/${controlDatabase}`) });
  await c.connect();
  try {
    return (await c.query(`SELECT count(*)::int AS n FROM api_keys WHERE role = 'ADMIN'`)).rows[0].n;
  } finally {
    await c.end();
  }
}

test('a busy port: the start fails at once, prints no key and stores none; the next start prints one, and it works', async () => {
  const busy = createServer();
  const port = await freePort();
  await new Promise<void>((resolve) => busy.listen(port, '127.0.0.1', resolve));
  try {
    const failed = await main({ PORT: String(port), POOLER: 'none' });
    assert.equal(failed.exitCode, 1);
    assert.match(failed.output(), /port \d+ on 127\.0\.0\.1 is in use/);
    assert.doesNotMatch(failed.output(), /tnry_[0-9a-f]{64}/);
    assert.equal(await adminKeys(), 0, 'no key stored');
  } finally {
    busy.close();
  }
  const good = await main({ PORT: String(await freePort()), POOLER: 'none' });
  assert.equal(good.exitCode, null, good.output());
  const key = /tnry_[0-9a-f]{64}/.exec(good.output())?.[0];
  assert.ok(key, good.output());
  // Stored right after it is shown.
  await until(adminKeys, (n) => n === 1, 'the shown key to be stored');
  const url = /GraphiQL at (http:\/\/\S+)\/graphql/.exec(good.output())![1]!;
  const r = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query: '{ viewer { role } }' }) });
  assert.deepEqual(((await r.json()) as any).data, { viewer: { role: 'ADMIN' } });
  good.child.kill('SIGTERM');
  await new Promise((r) => good.child.once('exit', r));
});

test('a second instance with the same configuration leaves the first, and its PgBouncer, intact', { skip: !findPgBouncer() && process.env.CI !== 'true' ? 'pgbouncer is not installed' : false }, async () => {
  const env = { PORT: String(await freePort()), POOLER: 'pgbouncer', POOLER_PORT: String(await freePort()), POOLER_DIR: path.join(dir, 'pgbouncer') };
  const first = await main(env);
  assert.equal(first.exitCode, null, first.output());
  const url = /GraphiQL at (http:\/\/\S+)\/graphql/.exec(first.output())![1]!;
  const pid = async () => Number((await readFile(path.join(env.POOLER_DIR, 'pgbouncer.pid'), 'utf8')).trim());
  const bouncer = await pid();
  assert.ok(bouncer > 0);

  // The same port: refused before anything else starts.
  const second = await main(env);
  assert.equal(second.exitCode, 1);
  assert.match(second.output(), /is in use/);
  // Another port, the same pooler folder: refused, the first one's PgBouncer untouched.
  const third = await main({ ...env, PORT: String(await freePort()) });
  assert.equal(third.exitCode, 1);
  assert.match(third.output(), /belongs to another running Tenantry/);

  assert.equal(await pid(), bouncer, 'the same PgBouncer runs');
  process.kill(bouncer, 0); // throws if it is gone
  const ready = await fetch(`${url}/health/ready`);
  const body = (await ready.json()) as any;
  assert.ok(body.checks.find((c: any) => c.name === 'pooler').ok, JSON.stringify(body.checks));
  first.child.kill('SIGTERM');
  await new Promise((r) => first.child.once('exit', r));
});
