// @test-scope once
// Several PgBouncers, each with a share of the pools (POOLER_SHARDS, issue 17): a tenant's pool
// lives on the PgBouncer its database name picks and its pooled connection string names that
// PgBouncer's port; a pool change rewrites and reloads that PgBouncer's file only; one that dies
// takes only its own pools (ERROR) while the others stay IN_SYNC; usage counts pooled sessions
// on every PgBouncer; a provisioning tenant's pool is on its PgBouncer before its password is set,
// and goes again with a provisioning that fails; and a different POOLER_SHARDS for an existing
// pooler folder is refused.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import format from 'pg-format';
import { findPgBouncer } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { shardOf } from '../src/modules/pools/pgbouncer/pgbouncer-shards.js';
import { checkShardCount } from '../src/modules/pools/pooler-setup.js';
import { pooledBackendKey } from '../src/modules/pools/index.js';
import type { ObservedPool } from '../src/modules/pools/pooler-driver.js';
import { until } from './support/subscriptions.js';
import { buildTenantSamples, sessionsByRole, type SessionRow } from '../src/modules/usage/usage-sample.js';
import { freePorts } from './support/free-port.js';
import { connectAs, PROVISION, poolStatus, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

const SHARDS = 3;

test('a pool\'s PgBouncer is FNV-1a of its name, fixed for good (pooled ports handed out depend on it)', () => {
  assert.equal(shardOf('tenant_acme', 8), 0);
  assert.equal(shardOf('tenant_globex', 8), 1);
  assert.equal(shardOf('tenant_initech', 16), 8);
  assert.equal(shardOf('anything', 1), 0);
});

test('pooled sessions are told apart by role and pid: the same pid on another cluster is not pooled', () => {
  const row = (pid: number, role: string): SessionRow =>
    ({ pid, role, state: 'idle', application_name: '', duration_seconds: 0, query: '', backend_start: new Date(), query_start: null }) as unknown as SessionRow;
  // Backend 4242 of tenant a's cluster is a PgBouncer server connection; 4242 on b's cluster is a direct session.
  const pooled = new Map([[pooledBackendKey('t_a', 4242), { clientAttached: true }]]);
  const tenants = [
    { id: 'a', slug: 'a', roleName: 't_a', clusterId: 'c1', maxConnections: 10 },
    { id: 'b', slug: 'b', roleName: 't_b', clusterId: 'c2', maxConnections: 10 },
  ];
  const samples = buildTenantSamples(tenants, sessionsByRole([row(4242, 't_a'), row(4242, 't_b')]), new Date(), () => 0, pooled);
  assert.deepEqual(samples.map((s) => [s.tenantSlug, s.pooled, s.direct]), [['a', 1, 0], ['b', 0, 1]]);
});

test('a different POOLER_SHARDS for an existing pooler folder is refused, naming the recorded one', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tenantry-shards-'));
  try {
    await (await checkShardCount(dir, 3))?.();
    assert.equal(await checkShardCount(dir, 3), null, 'recorded already');
    await assert.rejects(checkShardCount(dir, 2), /POOLER_SHARDS is 2, but this pooler .* was started with 3/);
    // A folder from before the count was recorded, holding one PgBouncer's files, ran one.
    const old = path.join(dir, 'before');
    await mkdir(old);
    await writeFile(path.join(old, 'pgbouncer.ini'), '[databases]\n');
    await assert.rejects(checkShardCount(old, 4), /POOLER_SHARDS is 4, but this pooler .* was started with 1/);
    await (await checkShardCount(old, 1))?.();
    assert.equal((await readFile(path.join(old, 'tenantry.shards'), 'utf8')).trim(), '1');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

if (!findPgBouncer() && process.env.CI !== 'true') {
  test('several PgBouncers', { skip: 'pgbouncer is not installed; with CI=true this fails' }, () => {});
} else {
  await suite();
}

async function suite() {
  let t: TestTenantry;
  let poolerDir: string;
  let basePort: number;
  /** Released by the test that kills a PgBouncer: the supervisor restarts it only then. */
  let restartGate: Promise<void> = Promise.resolve();
  const clients = new Set<pg.Client>();
  /** Two tenants per PgBouncer: slug → pooled connection string. */
  const pooled = new Map<string, string>();
  const slugsOf = (shard: number) => [...pooled.keys()].filter((s) => shardOf(`${t.prefix}${s.replaceAll('-', '_')}`, SHARDS) === shard);
  const dbName = (slug: string) => `${t.prefix}${slug.replaceAll('-', '_')}`;
  const authUser = () => `${t.controlDatabase}_pooler`;
  /** Whether the pooler's auth user is granted CONNECT on a database by name (not through PUBLIC). */
  const authUserMayConnect = async (db: string) =>
    (
      await t.admin.query<{ ok: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1 AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2) AND a.privilege_type = 'CONNECT') AS ok`,
        [db, authUser()],
      )
    ).rows[0]!.ok;
  let accessSeenMidProvisioning: boolean | undefined;
  /** What a provisioning's PgBouncer ran for it before its password was set. */
  const seenBeforePassword = new Map<string, ObservedPool | null>();

  before(async () => {
    poolerDir = await mkdtemp(path.join(tmpdir(), 'tenantry-shards-'));
    basePort = await freePorts(SHARDS);
    t = await startTestTenantry({
      env: { POOLER: 'pgbouncer', POOLER_PORT: String(basePort), POOLER_SHARDS: String(SHARDS), POOLER_DIR: poolerDir, USAGE_SAMPLE_MS: '200', RECONCILE_INTERVAL_MS: '0' },
      failpoints: {
        'pooler.before-restart': () => restartGate,
        'provision.before:SCHEMA_VERSION': async ({ tenantSlug }) => {
          if (tenantSlug !== 'mid-access') return;
          // As if held between ACCESS's grants: the auth user cannot enter yet. A reconciliation now
          // must leave the database to the provisioning (racing it, a GRANT could fail the provisioning).
          const db = dbName(tenantSlug);
          await t.admin.query(format('REVOKE CONNECT ON DATABASE %I FROM %I', db, authUser()));
          await t.app.parts.pools.reconcile();
          accessSeenMidProvisioning = await authUserMayConnect(db);
        },
        'provision.before:CREDENTIALS': async ({ tenantSlug }) => {
          if (!tenantSlug?.startsWith('early-pool')) return;
          // Held while the steps run: the pool asked for when the row turned PROVISIONING is applied meanwhile.
          const name = dbName(tenantSlug);
          const shard = t.app.pooler.driver!.shards[shardOf(name, SHARDS)]!;
          seenBeforePassword.set(tenantSlug, await until(() => shard.observePool(name), (p) => p !== null, `${name} on its PgBouncer before CREDENTIALS`));
          if (tenantSlug === 'early-pool-fails') throw new Error('injected failure before CREDENTIALS');
        },
      },
    });
    // Slugs chosen so that every PgBouncer gets two tenants.
    const perShard = new Map<number, string[]>();
    for (let i = 0; [...perShard.values()].reduce((n, l) => n + Math.min(l.length, 2), 0) < SHARDS * 2; i++) {
      const slug = `shard-${i}`;
      const list = perShard.get(shardOf(dbName(slug), SHARDS)) ?? [];
      if (list.length < 2) perShard.set(shardOf(dbName(slug), SHARDS), [...list, slug]);
    }
    for (const slug of [...perShard.values()].flat()) {
      const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 10 } });
      assert.deepEqual(r.data.provisionTenant.userErrors, [], slug);
      pooled.set(slug, r.data.provisionTenant.pooledConnectionString);
    }
  });
  after(async () => {
    await Promise.all([...clients].map((c) => c.end().catch(() => undefined)));
    await t.cleanup();
    await rm(poolerDir, { recursive: true, force: true });
  });

  const open = async (s: string) => {
    const c = await connectAs(s);
    clients.add(c);
    return c;
  };
  const inis = () => t.app.pooler.processes.map((p) => p.settings.files.ini);
  const fileState = async (file: string) => ({ text: await readFile(file, 'utf8'), mtimeMs: (await stat(file)).mtimeMs });
  const poolsOf = async (slugs: string[]) =>
    (await t.app.parts.db.tenant.findMany({ where: { slug: { in: slugs } }, include: { pool: true } })).map((r) => r.pool?.status);

  describe('POOLER_SHARDS=3', () => {
    test('each pooled connection string names the port of the PgBouncer its pool is on, and works', async () => {
      assert.equal(t.app.pooler.processes.length, SHARDS);
      for (const [slug, url] of pooled) {
        const shard = shardOf(dbName(slug), SHARDS);
        assert.equal(new URL(url).port, String(basePort + shard), slug);
        const c = await open(url);
        assert.equal((await c.query<{ db: string }>('SELECT pg_catalog.current_database() AS db')).rows[0]!.db, dbName(slug));
        await c.end();
        clients.delete(c);
        // That PgBouncer runs the pool; no other does.
        for (const [i, driver] of t.app.pooler.driver!.shards.entries()) {
          assert.equal((await driver.observePool(dbName(slug))) !== null, i === shard, `${slug} on PgBouncer ${i}`);
        }
      }
    });

    test('a quota change rewrites and reloads only its PgBouncer\'s file', async () => {
      const slug = slugsOf(1)[0]!;
      const before = await Promise.all(inis().map(fileState));
      const r = await t.gql(`mutation($input: UpdateTenantQuotaInput!) { updateTenantQuota(input: $input) { pool { poolSize status } userErrors { code message } } }`, {
        input: { slug, maxConnections: 17, reason: 'shards test' },
      });
      assert.deepEqual(r.data.updateTenantQuota.userErrors, []);
      assert.equal((await poolStatus(t, slug)).poolSize, 17);
      const afterwards = await Promise.all(inis().map(fileState));
      assert.notEqual(afterwards[1]!.text, before[1]!.text, 'PgBouncer 1\'s file has the new size');
      for (const i of [0, 2]) assert.deepEqual(afterwards[i], before[i], `PgBouncer ${i}'s file untouched`);
      assert.deepEqual(t.app.pooler.driver!.lastReloaded, [1]);
      assert.equal((await t.app.pooler.driver!.observePool(dbName(slug)))?.poolSize, 17, 'PgBouncer 1 runs it');
    });

    test('a provisioning tenant\'s pool is on its PgBouncer before its password is set; a failed provisioning takes it away', async () => {
      const ok = await t.gql(PROVISION, { input: { slug: 'early-pool', displayName: 'early', maxConnections: 10 } });
      assert.deepEqual(ok.data.provisionTenant.userErrors, []);
      assert.equal(seenBeforePassword.get('early-pool')?.poolSize, 10, 'applied while the steps ran');
      assert.equal((await poolStatus(t, 'early-pool')).status, 'IN_SYNC');
      const c = await open(ok.data.provisionTenant.pooledConnectionString);
      assert.equal((await c.query<{ db: string }>('SELECT pg_catalog.current_database() AS db')).rows[0]!.db, dbName('early-pool'));
      await c.end();
      clients.delete(c);

      const failed = await t.gql(PROVISION, { input: { slug: 'early-pool-fails', displayName: 'fails', maxConnections: 10 } });
      assert.equal(failed.data.provisionTenant.userErrors[0]?.code, 'PROVISIONING_FAILED', JSON.stringify(failed.data));
      assert.notEqual(seenBeforePassword.get('early-pool-fails'), undefined, 'its pool was there while it was provisioned');
      const name = dbName('early-pool-fails');
      const shard = t.app.pooler.driver!.shards[shardOf(name, SHARDS)]!;
      assert.equal(await shard.observePool(name), null, 'the rollback took the pool away');
      const row = await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'early-pool-fails' }, include: { pool: true } });
      assert.deepEqual([row.status, row.pool], ['FAILED', null]);
    });

    test('a reconciliation leaves a provisioning tenant\'s database to its provisioning; once ACTIVE, it repairs the pooler\'s access', async () => {
      const r = await t.gql(PROVISION, { input: { slug: 'mid-access', displayName: 'mid', maxConnections: 10 } });
      assert.deepEqual(r.data.provisionTenant.userErrors, []);
      assert.equal(accessSeenMidProvisioning, false, 'the reconciliation did not grant the auth user CONNECT while the tenant was PROVISIONING');
      assert.equal(await authUserMayConnect(dbName('mid-access')), false);
      await t.app.parts.pools.reconcile();
      assert.equal(await authUserMayConnect(dbName('mid-access')), true, 'ACTIVE: repaired');
      const c = await open(r.data.provisionTenant.pooledConnectionString);
      await c.end();
      clients.delete(c);
    });

    test('usage counts a pooled session on any PgBouncer', async () => {
      const slug = slugsOf(2)[0]!;
      const c = await open(pooled.get(slug)!);
      await c.query('BEGIN');
      await c.query('SELECT 1');
      const usage = async () => (await t.gql(`{ tenant(slug: "${slug}") { usage { current pooled direct } } }`)).data.tenant.usage;
      for (let i = 0; ; i++) {
        const u = await usage();
        if (u?.pooled === 1) {
          assert.deepEqual(u, { current: 1, pooled: 1, direct: 0 });
          break;
        }
        if (i > 200) assert.fail(`usage never counted the pooled session: ${JSON.stringify(u)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await c.query('COMMIT');
      await c.end();
      clients.delete(c);
    });

    test('a PgBouncer that dies takes only its own pools: ERROR there, IN_SYNC elsewhere, readiness names that PgBouncer; back, all IN_SYNC', async () => {
      let release!: () => void;
      restartGate = new Promise((r) => (release = r));
      const victim = t.app.pooler.processes[2]!;
      try {
        process.kill(victim.pid!, 'SIGKILL');
        const dead = slugsOf(2);
        const alive = [...slugsOf(0), ...slugsOf(1)];
        for (const slug of dead) await poolStatus(t, slug, 'ERROR');
        assert.deepEqual(await poolsOf(alive), alive.map(() => 'IN_SYNC'));
        // Readiness looks every READINESS_INTERVAL (10 minutes in tests): asked to look now.
        await t.app.parts.readiness.refreshChecks();
        const ready = await fetch(`${t.url}/health/ready`, { headers: { authorization: `Bearer ${t.adminKey}` } });
        // (503 in production; a development instance reports the failed check and stays 200.)
        const report = (await ready.json()) as { degraded: boolean; checks: { name: string; ok: boolean; detail: string }[] };
        assert.equal(report.degraded, true);
        const check = report.checks.find((c) => c.name === 'pooler');
        assert.equal(check?.ok, false, JSON.stringify(check));
        assert.match(check!.detail, new RegExp(`PgBouncer 2 \\(port ${basePort + 2}\\)`));
        // Live numbers: null for the pools of the one that is down, numbers for the others.
        const stats = async (slug: string) => (await t.gql(`{ tenant(slug: "${slug}") { pool { stats { clientsActive serversIdle } } } }`)).data.tenant.pool.stats;
        assert.equal(await stats(dead[0]!), null);
        const live = await stats(alive[0]!);
        assert.ok(live && Number.isInteger(live.clientsActive) && Number.isInteger(live.serversIdle), JSON.stringify(live));
        // The other PgBouncers keep serving their tenants.
        const c = await open(pooled.get(slugsOf(0)[0]!)!);
        assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
        await c.end();
        clients.delete(c);
      } finally {
        release();
      }
      for (const slug of pooled.keys()) await poolStatus(t, slug, 'IN_SYNC', 30_000);
      const c = await open(pooled.get(slugsOf(2)[0]!)!);
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    });
  });
}
