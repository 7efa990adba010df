// @test-scope once
// The per-cluster allocation counters (cluster_allocations) that triggers keep with every write of
// tenants and quotas: after any mix of writes, concurrent ones included, they equal a recount.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import format from 'pg-format';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { loadControlMigrations, prismaMigrationsLedger } from '../src/platform/db/control-migrations.js';
import { applyMigrations } from '../src/platform/db/migrations.js';
import { PRISMA_MIGRATE_LOCK } from '../src/platform/locks/lock-names.js';
import { testServerUrl } from './support/test-tenantry.js';

const database = `tenantry_schema_alloc_${process.pid}`;
const admin = new pg.Client({ connectionString: testServerUrl() });
const url = () => withDatabase(testServerUrl(), database);
let client: pg.Client;
const clusters = [randomUUID(), randomUUID(), randomUUID()] as const;
const COUNTERS_MIGRATION = '20261221100000_cluster_allocations';

before(async () => {
  await admin.connect();
  await admin.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', database));
  await admin.query(format('CREATE DATABASE %I', database));
  client = new pg.Client({ connectionString: url() });
  await client.connect();
});

after(async () => {
  await client.end();
  await admin.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', database));
  await admin.end();
});

/** A tenant and its quota in one statement, as provisioning writes them. */
async function addTenant(c: pg.ClientBase, clusterId: string, quota: number, status = 'ACTIVE'): Promise<string> {
  const id = randomUUID();
  await c.query(
    `WITH tenant AS (
       INSERT INTO tenants (id, slug, display_name, status, database_name, role_name, cluster_id, template_name, template_version, updated_at)
       VALUES ($1::uuid, $1, 'x', $2::"TenantStatus", $1, $1, $3::uuid, 'default', '1.0.0', now()) RETURNING id
     )
     INSERT INTO quotas (tenant_id, max_connections, updated_by) SELECT id, $4, 'test' FROM tenant`,
    [id, status, clusterId, quota],
  );
  return id;
}

async function counters(): Promise<Record<string, [number, number]>> {
  const { rows } = await client.query<{ cluster_id: string; tenant_count: number; allocated_connections: number }>(
    `SELECT cluster_id::text, tenant_count, allocated_connections FROM cluster_allocations WHERE tenant_count <> 0 OR allocated_connections <> 0`,
  );
  return Object.fromEntries(rows.map((r) => [r.cluster_id, [r.tenant_count, r.allocated_connections]]));
}

async function recount(): Promise<Record<string, [number, number]>> {
  const { rows } = await client.query<{ cluster_id: string; n: number; sum: number }>(
    `SELECT t.cluster_id::text, count(*)::int AS n, coalesce(sum(q.max_connections), 0)::int AS sum
       FROM tenants t LEFT JOIN quotas q ON q.tenant_id = t.id WHERE t.status <> 'DEPROVISIONED' GROUP BY t.cluster_id`,
  );
  return Object.fromEntries(rows.map((r) => [r.cluster_id, [r.n, r.sum]]));
}

test('the migration counts what is there already', async () => {
  const migrations = await loadControlMigrations();
  const at = migrations.findIndex((m) => m.name === COUNTERS_MIGRATION);
  assert.ok(at > 0, `${COUNTERS_MIGRATION} is among the migrations`);
  await applyMigrations(client, migrations.slice(0, at), prismaMigrationsLedger, { lockKey: PRISMA_MIGRATE_LOCK });
  for (const [i, id] of clusters.entries()) await client.query(`INSERT INTO clusters (id, name) VALUES ($1, $2)`, [id, `c${i}`]);
  for (let i = 0; i < 30; i++) await addTenant(client, clusters[i % 2]!, 10 + i, i % 7 === 0 ? 'DEPROVISIONED' : 'ACTIVE');
  // A tenant whose quota row is not written yet (a provisioning stopped before it, in older versions).
  await client.query(
    `INSERT INTO tenants (id, slug, display_name, database_name, role_name, cluster_id, template_name, template_version, updated_at)
     VALUES (gen_random_uuid(), 'no-quota', 'x', 'no_quota', 'no_quota', $1, 'default', '1.0.0', now())`,
    [clusters[0]],
  );
  await applyMigrations(client, migrations.slice(at), prismaMigrationsLedger, { lockKey: PRISMA_MIGRATE_LOCK });
  assert.deepEqual(await counters(), await recount());
  const { rows } = await client.query(`SELECT count(*)::int AS n FROM quotas q JOIN tenants t ON t.id = q.tenant_id
    WHERE q.counted_cluster_id IS DISTINCT FROM (CASE WHEN t.status <> 'DEPROVISIONED' THEN t.cluster_id END)`);
  assert.equal(rows[0].n, 0, 'every quota names the cluster it is counted on');
});

test('provisions, quota changes, deprovisions, re-provisions, moves and deletes keep the counters equal to a recount', async () => {
  const t1 = await addTenant(client, clusters[2], 50, 'PROVISIONING');
  assert.deepEqual((await counters())[clusters[2]], [1, 50], 'a tenant and its quota written in one statement count once');
  await client.query(`UPDATE tenants SET status = 'ACTIVE' WHERE id = $1`, [t1]);
  await client.query(`UPDATE quotas SET max_connections = 80 WHERE tenant_id = $1`, [t1]);
  assert.deepEqual((await counters())[clusters[2]], [1, 80]);
  await client.query(`UPDATE quotas SET updated_by = 'someone' WHERE tenant_id = $1`, [t1]);
  await client.query(`UPDATE tenants SET status = 'DEPROVISIONED' WHERE id = $1`, [t1]);
  assert.deepEqual((await counters())[clusters[2]], undefined, 'a deprovisioned tenant counts nowhere');
  // Provisioned again, elsewhere, with another quota, in one transaction (as startRecord does).
  await client.query('BEGIN');
  await client.query(`UPDATE tenants SET status = 'PROVISIONING', cluster_id = $2 WHERE id = $1`, [t1, clusters[1]]);
  await client.query(`UPDATE quotas SET max_connections = 25 WHERE tenant_id = $1`, [t1]);
  await client.query('COMMIT');
  assert.deepEqual(await counters(), await recount());
  // A move, then a move back that rolls back.
  await client.query(`UPDATE tenants SET cluster_id = $2 WHERE id = $1`, [t1, clusters[2]]);
  await client.query('BEGIN');
  await client.query(`UPDATE tenants SET cluster_id = $2 WHERE id = $1`, [t1, clusters[0]]);
  await client.query('ROLLBACK');
  assert.deepEqual((await counters())[clusters[2]], [1, 25]);
  // Deleted tenants: their quota goes by cascade.
  await client.query(`DELETE FROM tenants WHERE id = $1`, [t1]);
  await client.query(`DELETE FROM tenants WHERE slug = 'no-quota'`);
  // A quota row deleted on its own.
  const t2 = await addTenant(client, clusters[0], 33);
  await client.query(`DELETE FROM quotas WHERE tenant_id = $1`, [t2]);
  assert.deepEqual(await counters(), await recount());
});

test('concurrent writes from many sessions, moves in both directions among them, neither deadlock nor drift', async () => {
  const sessions = await Promise.all(
    Array.from({ length: 8 }, async () => {
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      return c;
    }),
  );
  try {
    let seed = 17;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    // As in Tenantry, one tenant's writes are one session's at a time (the tenant's lock), and a
    // transaction writes one tenant; so any deadlock here would be on the counters.
    const work = sessions.map(async (c) => {
      const mine: string[] = [];
      for (let i = 0; i < 8; i++) mine.push(await addTenant(c, clusters[i % 3]!, 10 + i));
      for (let round = 0; round < 60; round++) {
        const tenant = mine[random(mine.length)]!;
        const op = round % 5;
        await c.query('BEGIN');
        if (op === 0) await c.query(`UPDATE tenants SET cluster_id = $2 WHERE id = $1`, [tenant, clusters[random(3)]]);
        if (op === 1) await c.query(`UPDATE quotas SET max_connections = $2 WHERE tenant_id = $1`, [tenant, 10 + random(200)]);
        if (op === 2) await c.query(`UPDATE tenants SET status = (CASE WHEN status = 'ACTIVE' THEN 'DEPROVISIONED' ELSE 'ACTIVE' END)::"TenantStatus" WHERE id = $1`, [tenant]);
        if (op === 3) mine.push(await addTenant(c, clusters[random(3)]!, 10 + random(100)));
        if (op === 4) {
          // Provisioned again on another cluster with another quota, in one transaction.
          await c.query(`UPDATE tenants SET status = 'PROVISIONING', cluster_id = $2 WHERE id = $1`, [tenant, clusters[random(3)]]);
          await c.query(`UPDATE quotas SET max_connections = $2 WHERE tenant_id = $1`, [tenant, 10 + random(200)]);
        }
        await c.query('COMMIT');
      }
    });
    const outcomes = await Promise.allSettled(work);
    assert.deepEqual(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason)), []);
    assert.deepEqual(await counters(), await recount());
  } finally {
    await Promise.all(sessions.map((c) => c.end()));
  }
});

test('writes made with triggers disabled are found and mended by tenantry_recount_allocations()', async () => {
  const right = await recount();
  assert.deepEqual(await client.query(`SELECT tenantry_recount_allocations() AS wrong`).then((r) => r.rows[0].wrong), 0, 'nothing to mend');
  await client.query('BEGIN');
  await client.query(`SET LOCAL session_replication_role = replica`);
  const id = await addTenant(client, clusters[1], 40);
  await client.query(`UPDATE tenants SET cluster_id = $2 WHERE id = (SELECT id FROM tenants WHERE cluster_id = $1 AND status = 'ACTIVE' AND id <> $3 LIMIT 1)`, [clusters[0], clusters[2], id]);
  await client.query('COMMIT');
  assert.notDeepEqual(await counters(), await recount(), 'the counters missed what the triggers did not see');
  assert.notDeepEqual(await recount(), right);
  assert.equal(await client.query(`SELECT tenantry_recount_allocations() AS wrong`).then((r) => r.rows[0].wrong), 3);
  assert.deepEqual(await counters(), await recount());
  assert.deepEqual(await client.query(`SELECT tenantry_recount_allocations() AS wrong`).then((r) => r.rows[0].wrong), 0);
});

