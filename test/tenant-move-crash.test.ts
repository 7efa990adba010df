// @test-slow: started first (scripts/run-tests.ts)
// @test-scope once (its control database and clusters are private PostgreSQL servers, whatever the run's server)
// Issue 17: SIGKILL of the Tenantry running a move, at each of its steps. After recovery every
// move has finished (killed at or after its commit point) or been rolled back (before it), and
// the tenant has a login role on exactly one cluster: the one tenants.cluster_id names.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { onDatabase, startPrivateCluster, type PrivateCluster } from './support/private-cluster.js';
import { spawnReplica } from './support/replica.js';
import { until } from './support/subscriptions.js';
import { connectAs, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

let a: PrivateCluster;
let b: PrivateCluster;
let t: TestTenantry;
let sourceId: string;
let targetId: string;
const envVar = `TENANTRY_MOVE_CRASH_B_${process.pid}`;

before(async () => {
  [a, b] = await Promise.all([startPrivateCluster({ version: 15 }), startPrivateCluster({ version: 15 })]);
  process.env[envVar] = b.url;
  t = await startTestTenantry({ serverUrl: a.url, env: { OPERATION_RESUME_INTERVAL_MS: '600000', RECOVERY_INTERVAL_MS: '0' } });
  sourceId = await control(async (c) => (await c.query(`SELECT id::text FROM clusters WHERE name = 'default'`)).rows[0].id);
  targetId = randomUUID();
  await control((c) => c.query(`INSERT INTO clusters (id, name, connection_url_env, status, updated_at) VALUES ($1, 'target-b', $2, 'ACTIVE', now())`, [targetId, envVar]));
});

after(async () => {
  await t?.stop();
  await Promise.all([a?.remove(), b?.remove()]);
  delete process.env[envVar];
});

const on = onDatabase;

function control<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  return on(a.url, t.controlDatabase, fn);
}

const MOVE = `mutation Move($input: MoveTenantInput!) { moveTenant(input: $input) { move { id } userErrors { code message } } }`;

/** Where the tenant's roles can log in: cluster name → true/false/null (absent). */
async function logins(role: string): Promise<{ a: boolean | null; b: boolean | null }> {
  const q = (url: string) => on(url, 'postgres', async (c) => (await c.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [role])).rows[0]?.rolcanlogin ?? null);
  return { a: await q(a.url), b: await q(b.url) };
}

async function moveLeftovers(url: string): Promise<string[]> {
  return on(url, 'postgres', async (c) => {
    const out: string[] = [];
    for (const r of (await c.query(`SELECT slot_name AS n FROM pg_replication_slots`)).rows) out.push(`slot ${r.n}`);
    for (const r of (await c.query(`SELECT roname AS n FROM pg_replication_origin`)).rows) out.push(`origin ${r.n}`);
    // Subscriptions are per database but listed server-wide in pg_subscription.
    for (const r of (await c.query(`SELECT subname AS n FROM pg_subscription`)).rows) out.push(`subscription ${r.n}`);
    return out;
  });
}

const POINTS = [
  'move.after:TARGET_ROLE',
  'move.after:TARGET_DATABASE',
  'move.after:SCHEMA',
  'move.after:PUBLICATION',
  'move.after:SUBSCRIPTION',
  'move.after:INITIAL_COPY',
  'move.after:INDEXES',
  'move.after:CATCH_UP',
  'move.cutover:paused',
  'move.after:COMMITTED',
  'move.after:CLEANUP',
];

describe('SIGKILL during a move', () => {
  for (const [i, point] of POINTS.entries()) {
    test(`at ${point}: recovery ${i >= 9 ? 'finishes' : 'rolls back'} the move; the tenant logs in on exactly its cluster`, async () => {
      const slug = `crash-move-${i}`;
      const p = (await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5, placement: { clusterId: sourceId } } })).data.provisionTenant;
      assert.deepEqual(p.userErrors, []);
      const tenant = await connectAs(p.connectionString);
      await tenant.query(`CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT 'v' || g FROM generate_series(1, 2000) g`);
      await tenant.end();

      const replica = await spawnReplica(
        {
          DATABASE_URL: a.url,
          CONTROL_DATABASE: t.controlDatabase,
          TENANT_DB_PREFIX: t.prefix,
          ADMIN_API_KEY: t.adminKey,
          PORT: '0',
          POOLER: 'none',
          QUOTA_MIN: '2',
          OVERCOMMIT_FACTOR: '50',
          RECONCILE_INTERVAL_MS: '0',
          RECOVERY_INTERVAL_MS: '0',
          INVENTORY_INTERVAL_MS: '0',
          OPERATION_RESUME_INTERVAL_MS: '600000',
          LOG_LEVEL: 'warn',
        },
        point,
        { processEnv: { [envVar]: b.url } },
      );
      try {
        const res = await fetch(`${replica.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${t.adminKey}` },
          body: JSON.stringify({ query: MOVE, variables: { input: { slug, targetClusterId: targetId, mode: 'ONLINE', retainSourceHours: 0 } } }),
        });
        const body = (await res.json()) as any;
        assert.deepEqual(body.data.moveTenant.userErrors, [], JSON.stringify(body));
        assert.equal(await replica.paused, point);
      } finally {
        await replica.kill('SIGKILL');
      }

      const moveId: string = await control(async (c) => (await c.query(`SELECT m.id::text FROM tenant_moves m JOIN tenants t ON t.id = m.tenant_id WHERE t.slug = $1`, [slug])).rows[0].id);
      const status = await until(
        async () => {
          await t.app.parts.moves.recover();
          return control(async (c) => (await c.query(`SELECT status::text, step, error FROM tenant_moves WHERE id = $1`, [moveId])).rows[0]);
        },
        (m) => m.status !== 'RUNNING',
        'recovery to settle the killed move',
        60_000,
      );
      assert.equal(status.status, i >= 9 ? 'SUCCEEDED' : 'ROLLED_BACK', JSON.stringify(status));

      const clusterId = await control(async (c) => (await c.query(`SELECT cluster_id::text AS id FROM tenants WHERE slug = $1`, [slug])).rows[0].id);
      assert.equal(clusterId, i >= 9 ? targetId : sourceId);
      const l = await logins(p.tenant.roleName);
      assert.deepEqual(i >= 9 ? [l.a, l.b] : [l.a, l.b], i >= 9 ? [null, true] : [true, null], `logins ${JSON.stringify(l)}`);
      // The tenant works where it lives, with all its rows.
      const u = new URL(p.connectionString);
      if (i >= 9) u.port = String(b.port);
      const c = await connectAs(u.toString());
      assert.equal(Number((await c.query('SELECT count(*) AS n FROM t')).rows[0].n), 2000);
      await c.query(`INSERT INTO t (v) VALUES ('after')`);
      await c.end();
      assert.deepEqual(await moveLeftovers(a.url), []);
      assert.deepEqual(await moveLeftovers(b.url), []);
      const audit = await control(async (c) => (await c.query(`SELECT action FROM audit_events WHERE subject = $1 ORDER BY id`, [moveId])).rows.map((r) => r.action));
      assert.ok(audit.includes(i >= 9 ? 'move.finished' : 'move.rolled_back'), audit.join(', '));
    });
  }
});
