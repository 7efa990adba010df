import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import format from 'pg-format';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { AdminConsole } from '../src/modules/pools/pgbouncer/admin-console.js';
import { findPgBouncer } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { connectAs, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { freePort } from './support/free-port.js';

// Quotas enforced by PostgreSQL and by a real PgBouncer that this file's Tenantry starts.
// With CI=true a missing pgbouncer fails here (Tenantry refuses POOLER=pgbouncer without it).
if (!findPgBouncer() && process.env.CI !== 'true') {
  test('quotas through PgBouncer', { skip: 'pgbouncer is not installed; with CI=true this fails' }, () => {});
} else {
  await suite();
}


async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await probe();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** PgBouncer's server_idle_timeout in this file (the default is 10 s). */
const IDLE_TIMEOUT_S = 2;

const UPDATE = `mutation($input: UpdateTenantQuotaInput!) { updateTenantQuota(input: $input) {
  tenant { slug } quota { maxConnections updatedBy history(first: 5) { oldMaxConnections newMaxConnections reason actor } }
  change { oldMaxConnections newMaxConnections reason }
  connectionsOverLimit terminatedPids
  pool { name poolSize maxConnections status lastSyncedAt }
  userErrors { code field message }
} }`;

async function suite() {
  let t: TestTenantry;
  let poolerDir: string;
  const clients = new Set<pg.Client>();

  before(async () => {
    poolerDir = await mkdtemp(path.join(tmpdir(), 'tenantry-pooler-'));
    t = await startTestTenantry({
      env: { POOLER: 'pgbouncer', POOLER_PORT: String(await freePort()), POOLER_DIR: poolerDir, QUOTA_MAX: '100000', POOLER_SERVER_IDLE_TIMEOUT: String(IDLE_TIMEOUT_S) },
    });
  });
  after(async () => {
    await Promise.all([...clients].map((c) => c.end().catch(() => undefined)));
    await t.cleanup();
    await rm(poolerDir, { recursive: true, force: true });
  });

  const open = async (connectionString: string) => {
    const c = await connectAs(connectionString);
    clients.add(c);
    return c;
  };
  const close = async (...cs: pg.Client[]) => {
    for (const c of cs) {
      clients.delete(c);
      await c.end().catch(() => undefined);
    }
  };
  const provision = async (slug: string, maxConnections: number) => {
    const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
    const p = r.data.provisionTenant as { tenant: { id: string; databaseName: string; roleName: string }; connectionString: string; pooledConnectionString: string };
    return p;
  };
  const update = async (input: Record<string, unknown>) => {
    const r = await t.gql(UPDATE, { input });
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    return r.data.updateTenantQuota;
  };
  const admin = () => {
    const p = t.app.pooler.process!;
    return new AdminConsole({ host: '127.0.0.1', port: p.settings.listenPort, user: p.admin.user, password: p.admin.password });
  };

  describe('enforcement', () => {
    test('PostgreSQL refuses the connection past the quota with 53300; raising it lets the next one in', async () => {
      const p = await provision('direct', 3);
      const held = [await open(p.connectionString), await open(p.connectionString), await open(p.connectionString)];
      await assert.rejects(connectAs(p.connectionString), (err: { code?: string; message: string }) => {
        assert.equal(err.code, '53300');
        assert.match(err.message, /too many connections for role/);
        return true;
      });
      // What an admin sees meanwhile.
      const usage = await t.gql(`{ tenant(slug: "direct") { usage { current max usagePercent byState { state count } } } }`);
      assert.deepEqual(usage.data.tenant.usage, { current: 3, max: 3, usagePercent: 100, byState: [{ state: 'IDLE', count: 3 }] });

      const r = await update({ slug: 'direct', maxConnections: 4, reason: 'launch day' });
      assert.deepEqual(r.userErrors, []);
      assert.deepEqual(r.change, { oldMaxConnections: 3, newMaxConnections: 4, reason: 'launch day' });
      assert.equal(r.quota.maxConnections, 4);
      assert.deepEqual(r.quota.history.map((h: any) => [h.oldMaxConnections, h.newMaxConnections, h.reason]), [[3, 4, 'launch day'], [null, 3, 'provisioned']]);
      assert.equal(r.pool.status, 'IN_SYNC');
      assert.equal(r.pool.poolSize, 4);
      const limits = await t.admin.query(
        `SELECT (SELECT rolconnlimit FROM pg_roles WHERE rolname = $1) AS role, (SELECT datconnlimit FROM pg_database WHERE datname = $1) AS db`,
        [p.tenant.roleName],
      );
      assert.deepEqual(limits.rows[0], { role: 4, db: 7 });
      held.push(await open(p.connectionString));
      await close(...held);

      const audit = await t.gql(`{ auditEvents(first: 1, filter: { tenantSlug: "direct", action: "quota.updated" }) { edges { node { actor metadata } } } }`);
      assert.deepEqual(audit.data.auditEvents.edges[0].node.metadata, { oldMaxConnections: 3, newMaxConnections: 4, reason: 'launch day' });
    });

    test('through PgBouncer the pool holds the quota: the next client waits, and a raise lets it through', async () => {
      const p = await provision('pooled', 2);
      assert.match(p.pooledConnectionString, new RegExp(`:${t.app.pooler.process!.settings.listenPort}/${p.tenant.databaseName}$`));
      const pool = await t.gql(`{ tenant(slug: "pooled") { pool { name mode poolSize maxConnections status } } }`);
      assert.deepEqual(pool.data.tenant.pool, { name: p.tenant.databaseName, mode: 'TRANSACTION', poolSize: 2, maxConnections: 2, status: 'IN_SYNC' });

      // Two clients each hold a transaction: both server connections the pool may open are taken.
      const busy = [await open(p.pooledConnectionString), await open(p.pooledConnectionString)];
      for (const c of busy) await c.query('BEGIN; SELECT 1');
      const third = await open(p.pooledConnectionString);
      let answered = false;
      const waiting = third.query('SELECT current_user AS u').then((r) => {
        answered = true;
        return r;
      });
      const stats = await until(
        () => t.gql(`{ tenant(slug: "pooled") { pool { stats { clientsActive clientsWaiting serversActive } } } }`).then((r) => r.data.tenant.pool.stats),
        (s) => s?.clientsWaiting >= 1,
        'a waiting client in SHOW POOLS',
      );
      assert.equal(stats.serversActive, 2);
      assert.equal(answered, false);
      const server = await t.admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1`, [p.tenant.roleName]);
      assert.equal(server.rows[0].n, 2, 'PgBouncer opened no more server connections than the quota');

      const r = await update({ slug: 'pooled', maxConnections: 3 });
      assert.equal(r.pool.status, 'IN_SYNC');
      assert.equal(r.pool.poolSize, 3);
      const result = await waiting;
      assert.equal(result.rows[0].u, p.tenant.roleName);
      for (const c of busy) await c.query('COMMIT');
      await close(...busy, third);
    });

    test('after a burst of pooled traffic, direct connections get the whole quota back within server_idle_timeout', async (tc) => {
      const p = await provision('bursty', 3);
      // Three clients in a transaction at once: PgBouncer opens all three server connections the quota allows.
      const burst = [await open(p.pooledConnectionString), await open(p.pooledConnectionString), await open(p.pooledConnectionString)];
      for (const c of burst) await c.query('BEGIN; SELECT 1');
      for (const c of burst) await c.query('COMMIT');
      await close(...burst);
      const held = await t.admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1`, [p.tenant.roleName]);
      tc.diagnostic(`right after the burst PgBouncer holds ${held.rows[0].n} idle server connections of the tenant's role`);

      // Within the idle timeout (plus PgBouncer's once-a-second janitor and a noisy machine's
      // slack) the tenant can use its whole quota directly.
      const deadline = Date.now() + (IDLE_TIMEOUT_S + 20) * 1000;
      let direct: pg.Client[] = [];
      for (;;) {
        try {
          for (let i = direct.length; i < 3; i++) direct.push(await open(p.connectionString));
          break;
        } catch (err) {
          assert.equal((err as { code?: string }).code, '53300', String(err));
          if (Date.now() > deadline) throw new Error(`direct connections were still refused ${IDLE_TIMEOUT_S + 20}s after the burst: ${String(err)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      const now = await t.admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1`, [p.tenant.roleName]);
      assert.equal(now.rows[0].n, 3, 'the quota is held by direct sessions only');
      await close(...direct);
      direct = [];
    });

    test('lowering below the sessions held reports the excess, and terminateExcess ends the newest', async () => {
      const p = await provision('shrink', 4);
      const sessions: { client: pg.Client; pid: number }[] = [];
      for (let i = 0; i < 4; i++) {
        const client = await open(p.connectionString);
        sessions.push({ client, pid: (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid });
      }
      const soft = await update({ slug: 'shrink', maxConnections: 3 });
      assert.equal(soft.connectionsOverLimit, 1);
      assert.deepEqual(soft.terminatedPids, []);
      const hard = await update({ slug: 'shrink', maxConnections: 2, terminateExcess: true });
      assert.equal(hard.connectionsOverLimit, 2);
      assert.deepEqual([...hard.terminatedPids].sort(), [sessions[2]!.pid, sessions[3]!.pid].sort());
      const alive = await t.admin.query(`SELECT pid FROM pg_stat_activity WHERE usename = $1 ORDER BY pid`, [p.tenant.roleName]);
      assert.deepEqual(alive.rows.map((r) => r.pid), [sessions[0]!.pid, sessions[1]!.pid].sort((a, b) => a - b));
      await close(...sessions.map((s) => s.client));
    });
  });

  describe('refusals', () => {
    test('out of range, unknown tenant, and beyond the cluster capacity (with the numbers)', async () => {
      await provision('bounded', 5);
      const low = await update({ slug: 'bounded', maxConnections: 1 });
      assert.deepEqual(low.userErrors.map((e: any) => [e.code, e.field]), [['QUOTA_OUT_OF_RANGE', 'maxConnections']]);
      const missing = await update({ slug: 'nobody-here', maxConnections: 10 });
      assert.deepEqual(missing.userErrors.map((e: any) => e.code), ['NOT_FOUND']);

      const c = (await t.gql('{ clusters { capacity allocatedConnections } }')).data.clusters[0];
      const others = c.allocatedConnections - 5;
      const tooMany = c.capacity - others + 1;
      const over = await update({ slug: 'bounded', maxConnections: tooMany });
      assert.deepEqual(over.userErrors.map((e: any) => [e.code, e.field]), [['CLUSTER_CAPACITY_EXCEEDED', 'maxConnections']]);
      assert.match(over.userErrors[0].message, new RegExp(`can serve ${c.capacity} tenant connections .*max_connections \\d+ .*${others} are allocated to other tenants, so bounded can have at most ${c.capacity - others}, not ${tooMany}`));
      const role = await t.admin.query(`SELECT rolconnlimit FROM pg_roles WHERE rolname = $1`, [`${t.prefix}bounded`]);
      assert.equal(role.rows[0].rolconnlimit, 5, 'a refused change touches nothing');

      const newcomer = await t.gql(PROVISION, { input: { slug: 'newcomer', displayName: 'n', maxConnections: c.capacity - c.allocatedConnections + 1 } });
      assert.deepEqual(newcomer.data.provisionTenant.userErrors.map((e: any) => e.code), ['CLUSTER_CAPACITY_EXCEEDED']);
      assert.equal(newcomer.data.provisionTenant.tenant, null);
    });

    test('quota changes are admin only', async () => {
      const key = (await t.gql(`mutation { createApiKey(input: { name: "b", role: TENANT_ADMIN, tenantSlug: "bounded" }) { key } }`)).data.createApiKey.key;
      const r = await t.gql(UPDATE, { input: { slug: 'bounded', maxConnections: 6 } }, key);
      assert.equal(r.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    });
  });

  describe('pools kept in sync', () => {
    test('pooler down during a quota change: PostgreSQL changes, the pool is PENDING, and the reconciler finishes it', async () => {
      const p = await provision('resilient', 3);
      await t.app.pooler.process!.stop();
      const r = await update({ slug: 'resilient', maxConnections: 6 });
      assert.deepEqual(r.userErrors, []);
      assert.equal(r.quota.maxConnections, 6);
      assert.equal(r.pool.status, 'PENDING');
      const role = await t.admin.query(`SELECT rolconnlimit FROM pg_roles WHERE rolname = $1`, [p.tenant.roleName]);
      assert.equal(role.rows[0].rolconnlimit, 6, 'PostgreSQL and the control database agree while the pooler is down');
      const unreachable = await t.gql(`mutation { reconcilePools { report { reachable outcome } } }`);
      assert.deepEqual(unreachable.data.reconcilePools.report, { reachable: false, outcome: 'PENDING' });

      await t.app.pooler.process!.start();
      const rec = await t.gql(`mutation { reconcilePools(input: { reason: "pooler back" }) { report { reachable outcome missing orphaned actions } userErrors { code } } }`);
      assert.equal(rec.data.reconcilePools.report.outcome, 'IN_SYNC');
      const after = await t.gql(`{ tenant(slug: "resilient") { pool { status poolSize lastSyncedAt } } }`);
      assert.equal(after.data.tenant.pool.status, 'IN_SYNC');
      assert.equal(after.data.tenant.pool.poolSize, 6);
      const observed = (await admin().showDatabases()).find((d) => d.name === p.tenant.databaseName);
      assert.equal(observed?.poolSize, 6);
      const client = await open(p.pooledConnectionString);
      await close(client);
    });

    test('drift made by hand — a deleted pool, a stray pool, a resized pool — is reported and repaired', async () => {
      const gone = await provision('drift-gone', 3);
      const resized = await provision('drift-size', 3);
      const ini = t.app.pooler.process!.settings.files.ini;
      const text = await readFile(ini, 'utf8');
      const edited = text
        .split('\n')
        .filter((line) => !line.startsWith(`${gone.tenant.databaseName} =`))
        .map((line) => (line.startsWith(`${resized.tenant.databaseName} =`) ? line.replace('pool_size=3', 'pool_size=9') : line))
        .concat([`stray_pool = host=127.0.0.1 port=5432 dbname=postgres pool_size=1`, ''])
        .join('\n');
      await writeFile(ini, edited);
      await admin().reload();

      const r = await t.gql(`mutation { reconcilePools { report { reachable missing orphaned mismatched { name differences } actions outcome } } }`);
      const report = r.data.reconcilePools.report;
      assert.equal(report.outcome, 'IN_SYNC');
      assert.deepEqual(report.missing, [gone.tenant.databaseName]);
      assert.deepEqual(report.orphaned, ['stray_pool']);
      assert.deepEqual(report.mismatched, [{ name: resized.tenant.databaseName, differences: ['pool_size is 9, expected 3'] }]);
      assert.deepEqual(report.actions.sort(), [`added pool ${gone.tenant.databaseName}`, `removed orphan pool stray_pool`, `resized pool ${resized.tenant.databaseName}`].sort());

      const now = new Map((await admin().showDatabases()).map((d) => [d.name, d]));
      assert.equal(now.has('stray_pool'), false);
      assert.equal(now.get(gone.tenant.databaseName)?.poolSize, 3);
      assert.equal(now.get(resized.tenant.databaseName)?.poolSize, 3);
      const again = await t.gql(`mutation { reconcilePools { report { missing orphaned actions } } }`);
      assert.deepEqual(again.data.reconcilePools.report, { missing: [], orphaned: [], actions: [] });
      const audit = await t.gql(`{ auditEvents(first: 3, filter: { action: "pools.reconciled" }) { edges { node { metadata } } } }`);
      assert.deepEqual(audit.data.auditEvents.edges[1].node.metadata.orphaned, ['stray_pool']);
    });

    test('deprovisioning removes the pool', async () => {
      const p = await provision('short-lived', 3);
      await t.gql(`mutation { deprovisionTenant(input: { slug: "short-lived", confirm: "short-lived" }) { tenant { status } } }`);
      const names = (await admin().showDatabases()).map((d) => d.name);
      assert.equal(names.includes(p.tenant.databaseName), false);
    });
  });

  describe('terminateConnection', () => {
    test("ends one of the tenant's sessions; another tenant's pid or the control plane's is NOT_FOUND", async () => {
      const mine = await provision('term-a', 3);
      const theirs = await provision('term-b', 3);
      const a = await open(mine.connectionString);
      const b = await open(theirs.connectionString);
      const pidOf = async (c: pg.Client) => (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const [pidA, pidB] = [await pidOf(a), await pidOf(b)];
      const superuser = new pg.Client({ connectionString: withDatabase(process.env.TEST_DATABASE_URL!, mine.tenant.databaseName) });
      await superuser.connect();
      const pidControl = await pidOf(superuser);

      const TERMINATE = `mutation($input: TerminateConnectionInput!) { terminateConnection(input: $input) { terminatedPid userErrors { code field } } }`;
      const refuse = async (pid: number) => {
        const r = await t.gql(TERMINATE, { input: { slug: 'term-a', pid } });
        assert.deepEqual(r.data.terminateConnection.userErrors, [{ code: 'NOT_FOUND', field: 'pid' }]);
      };
      await refuse(pidB);
      await refuse(pidControl);
      await refuse(999999);
      await b.query('SELECT 1');
      await superuser.query('SELECT 1');

      const key = (await t.gql(`mutation { createApiKey(input: { name: "a", role: TENANT_ADMIN, tenantSlug: "term-a" }) { key } }`)).data.createApiKey.key;
      const ended = new Promise((resolve) => a.once('error', resolve));
      const ok = await t.gql(TERMINATE, { input: { slug: 'term-a', pid: pidA } }, key);
      assert.deepEqual(ok.data.terminateConnection, { terminatedPid: pidA, userErrors: [] });
      await ended;
      const other = await t.gql(TERMINATE, { input: { slug: 'term-b', pid: pidB } }, key);
      assert.deepEqual(other.data.terminateConnection.userErrors.map((e: any) => e.code), ['NOT_FOUND']);
      await superuser.end();
      await close(a, b);
    });
  });
}
