// PgBouncer's configuration that cannot be written (issue 14, item 2). A pool is IN_SYNC
// only when PgBouncer was shown to run it: a failed write is ERROR with the reason in the
// API, readiness and metrics, and the pools are repaired once the file is writable again
// (no reconciler here: the failed apply retries on its own). Real PgBouncer, real
// PostgreSQL, a real EPERM: tests run as root, whom no mode bit stops, so the file is made
// immutable (chattr +i, as `lsattr` shows); as another user, the folder loses its write bit.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { findPgBouncer } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { freePort } from './support/free-port.js';
import { until } from './support/subscriptions.js';
import { connectAs, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

const asRoot = userInfo().uid === 0;

if (!findPgBouncer() && process.env.CI !== 'true') {
  test('pooler files', { skip: 'pgbouncer is not installed; with CI=true this fails' }, () => {});
} else {
  await suite();
}

async function suite() {
  let t: TestTenantry;
  let tmp: string;
  let poolerDir: string;
  let ini: string;
  /** Undoes whatever made the configuration unwritable (idempotent). */
  let makeWritable = async () => {};
  /** Holds a restart of PgBouncer until the test has looked at the outage. */
  let gate: Promise<void> = Promise.resolve();
  let openGate = () => {};

  /** A real EPERM/EACCES for the writer of pgbouncer.ini (this process). */
  const makeUnwritable = async (): Promise<string> => {
    if (asRoot) {
      execFileSync('chattr', ['+i', ini]);
      makeWritable = async () => void execFileSync('chattr', ['-i', ini]);
      assert.match(execFileSync('lsattr', ['-d', ini], { encoding: 'utf8' }), /^\S*i\S*\s/, 'the file is immutable');
      return 'EPERM';
    }
    await chmod(poolerDir, 0o500);
    makeWritable = () => chmod(poolerDir, 0o700);
    return 'EACCES';
  };

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'tenantry-poolerfiles-'));
    await chmod(tmp, 0o711);
    poolerDir = path.join(tmp, 'pgbouncer');
    ini = path.join(poolerDir, 'pgbouncer.ini');
    // No reconciler and readiness checked only on demand: what follows is the apply's own doing.
    t = await startTestTenantry({
      env: { POOLER: 'pgbouncer', POOLER_PORT: String(await freePort()), POOLER_DIR: poolerDir, RECONCILE_INTERVAL_MS: '0' },
      failpoints: { 'pooler.before-restart': () => gate },
    });
  });
  after(async () => {
    openGate();
    await makeWritable().catch(() => undefined);
    await t?.cleanup();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const provision = async (slug: string, maxConnections: number) => {
    const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
    return r.data.provisionTenant as { tenant: { roleName: string; databaseName: string }; pooledConnectionString: string };
  };
  type PoolView = { status: string; poolSize: number; lastSyncedAt: string | null; lastError: string | null };
  const poolOf = (slug: string) => t.gql(`{ tenant(slug: "${slug}") { pool { status poolSize lastSyncedAt lastError } } }`).then((r) => r.data.tenant.pool as PoolView);
  const running = async (name: string) => (await t.app.pooler.driver!.observe()).find((p) => p.name === name)?.poolSize ?? null;
  const poolerCheck = async () => {
    const body = (await (await fetch(`${t.url}/health/ready`)).json()) as { checks: { name: string; ok: boolean; detail: string }[] };
    return body.checks.find((c) => c.name === 'pooler')!;
  };
  const metrics = async () => (await (await fetch(`${t.url}/metrics`)).text()).split('\n');
  const metric = async (line: string) => Number((await metrics()).find((l) => l.startsWith(`${line} `))?.split(' ')[1]);
  const pooledUser = async (connectionString: string) => {
    const c = await connectAs(connectionString);
    try {
      return (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
    } finally {
      await c.end();
    }
  };

  test('an unwritable pgbouncer.ini: changed pools are ERROR with the reason (API, readiness, metrics), the others stay IN_SYNC; writable again, all are repaired', async () => {
    const steady = await provision('steady', 3);
    const resized = await provision('resized', 3);
    const before = await poolOf('resized');
    assert.equal(before.status, 'IN_SYNC');
    assert.equal((await poolerCheck()).ok, true);

    const code = await makeUnwritable();
    const reason = new RegExp(`${ini.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be written \\(${code}`);

    // A quota change: PgBouncer cannot be told, so the pool is not IN_SYNC, and says why.
    const q = await t.gql(`mutation { updateTenantQuota(input: { slug: "resized", maxConnections: 5 }) { pool { status poolSize lastSyncedAt lastError } userErrors { code } } }`);
    assert.deepEqual(q.data.updateTenantQuota.userErrors, []);
    const answered = q.data.updateTenantQuota.pool as PoolView;
    assert.equal(answered.status, 'ERROR', JSON.stringify(answered));
    assert.equal(answered.poolSize, 5, 'the row records what is wanted');
    assert.match(answered.lastError!, reason);
    assert.equal(answered.lastSyncedAt, before.lastSyncedAt, 'not synced since');
    assert.equal(await running(resized.tenant.databaseName), 3, 'PgBouncer still runs the old size');

    // A tenant provisioned meanwhile: its pool is ERROR (its pooled string cannot work yet), not IN_SYNC.
    const newcomer = await provision('newcomer', 3);
    const pending = await poolOf('newcomer');
    assert.equal(pending.status, 'ERROR');
    assert.match(pending.lastError!, reason);
    assert.equal(pending.lastSyncedAt, null);
    await assert.rejects(pooledUser(newcomer.pooledConnectionString));

    // The pool PgBouncer runs as wanted stays IN_SYNC, and keeps working.
    assert.deepEqual([(await poolOf('steady')).status, (await poolOf('steady')).lastError], ['IN_SYNC', null]);
    assert.equal(await pooledUser(steady.pooledConnectionString), steady.tenant.roleName);

    // Readiness and metrics say so (readiness is refreshed by the failure itself, not by its timer).
    const check = await until(poolerCheck, (c) => !c.ok, 'readiness to report the pooler');
    assert.match(check.detail, /configuration cannot be written/);
    assert.match(check.detail, reason);
    assert.equal(await metric('tenantry_pooler_config_writable'), 0);
    assert.ok((await metric(`tenantry_pooler_config_write_failures_total{code="${code}"}`)) >= 1);

    // Writable again: repaired without a reconciler, a change or a restart.
    await makeWritable();
    await until(() => poolOf('resized'), (p) => p.status === 'IN_SYNC', 'the resized pool IN_SYNC', 60_000);
    await until(() => poolOf('newcomer'), (p) => p.status === 'IN_SYNC', 'the new pool IN_SYNC', 60_000);
    const repaired = await poolOf('resized');
    assert.deepEqual([repaired.poolSize, repaired.lastError], [5, null]);
    assert.ok(repaired.lastSyncedAt! > before.lastSyncedAt!, 'synced again');
    assert.equal(await running(resized.tenant.databaseName), 5);
    assert.equal(await pooledUser(newcomer.pooledConnectionString), newcomer.tenant.roleName);
    assert.equal((await until(poolerCheck, (c) => c.ok, 'readiness to clear')).detail, 'pgbouncer reachable');
    assert.equal(await metric('tenantry_pooler_config_writable'), 1);
  });

  test('PgBouncer dying while its configuration cannot be written: every pool ERROR, saying both; restarted on the old file, the pools it runs are IN_SYNC; writable again, all are', async () => {
    const survivor = await provision('survivor', 3);
    assert.equal((await poolOf('survivor')).status, 'IN_SYNC');
    await makeUnwritable();
    const late = await provision('late', 3); // not in the file PgBouncer will restart with
    assert.equal((await poolOf('late')).status, 'ERROR');

    gate = new Promise((resolve) => (openGate = resolve));
    process.kill(t.app.pooler.process!.pid!, 'SIGKILL');
    const down = await until(() => poolOf('survivor'), (p) => p.status === 'ERROR', 'the running pool ERROR while PgBouncer is down');
    assert.match(down.lastError!, /^PgBouncer is down \(killed by SIGKILL\); Tenantry is restarting it; and .*pgbouncer\.ini cannot be written/);

    openGate();
    await until(() => t.app.pooler.status(), (s) => s.state === 'up', 'PgBouncer back');
    await until(() => poolOf('survivor'), (p) => p.status === 'IN_SYNC', 'the pool PgBouncer runs IN_SYNC', 60_000);
    assert.equal(await pooledUser(survivor.pooledConnectionString), survivor.tenant.roleName);
    assert.equal((await poolOf('late')).status, 'ERROR', 'the pool PgBouncer does not run stays ERROR');

    await makeWritable();
    await until(() => poolOf('late'), (p) => p.status === 'IN_SYNC', 'the late pool IN_SYNC', 60_000);
    assert.equal(await pooledUser(late.pooledConnectionString), late.tenant.roleName);
  });

  test('a start with an unwritable pgbouncer.ini fails, naming the file and what to check, and leaves nothing running', { skip: asRoot ? false : 'needs root (chattr)' }, async () => {
    const dir = path.join(tmp, 'second');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'pgbouncer.ini');
    await writeFile(file, ';; left by an earlier run\n');
    execFileSync('chattr', ['+i', file]);
    try {
      await assert.rejects(
        startTestTenantry({ shareWith: t, env: { POOLER: 'pgbouncer', POOLER_PORT: String(await freePort()), POOLER_DIR: dir } }),
        (err: Error) => {
          assert.ok(err.message.startsWith(`${file} cannot be written (EPERM, operation not permitted, in rename): PgBouncer cannot start until the file and its folder can be written`), err.message);
          assert.match(err.message, /immutable attribute \(lsattr\)/);
          return true;
        },
      );
      await assert.rejects(readFile(path.join(dir, 'tenantry.owner')), { code: 'ENOENT' }, 'the folder lock was let go');
    } finally {
      execFileSync('chattr', ['-i', file]);
    }
  });
}
