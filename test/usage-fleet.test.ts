// @test-slow: started first (scripts/run-tests.ts)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import format from 'pg-format';
import { withDatabase } from '../src/platform/db/connection-url.js';
import type { UsageBatch } from '../src/modules/usage/usage-sample.js';
import { subscribeSse, subscribeWs, until, wsClient } from './support/subscriptions.js';
import { settle, startTestTenantry, testServerUrl, type TestTenantry } from './support/test-tenantry.js';

// Issue 10, "Done when": 1,100 ACTIVE tenants start, sample and stream without error.
// 1,100 real databases would take ~8 GB and minutes, so the fleet is real roles and
// control-database rows (tenants + quotas, ACTIVE) inserted directly; a few of its roles
// hold real sessions (in the maintenance database, which sessions of any role may open).

const FLEET = 1100;
const ACTIVE = ['fleet_0007', 'fleet_0500', 'fleet_1099'];
const USAGE = `subscription($slug: String) { connectionUsage(tenantSlug: $slug) { tenantSlug current max sampledAt } }`;
const BATCH = `subscription { connectionUsageBatch { sampledAt usage { tenantSlug current } removedTenantSlugs } }`;
const ENV = {
  USAGE_SAMPLE_MS: '250',
  USAGE_IDLE_SAMPLE_MS: '1000',
  USAGE_LEASE_MS: '3000',
  // Fifteen seconds of heartbeats spread over 60 samples: about 1/60 of the fleet per sample.
  USAGE_HEARTBEAT_MS: '15000',
  INVENTORY_INTERVAL_MS: '0',
  OPERATION_RESUME_INTERVAL_MS: '3600000',
  RECOVERY_INTERVAL_MS: '0',
};

let first: TestTenantry;
let t: TestTenantry;
let admin: pg.Pool;
let startupMs = 0;
const sessions: pg.Client[] = [];
const password = 'fleet-session-pw';
/** What would say sampling or streaming went wrong (readiness may well complain about 1,100 databases that do not exist). */
const errorLogs = (tt: TestTenantry) => tt.logs.filter((l) => /usage sample failed|event listener failed|unexpected error|RepeaterOverflow|MaxListeners|uncaught/i.test(l));

before(async () => {
  admin = new pg.Pool({ connectionString: testServerUrl(), max: 2 });
  // The first instance creates the control database; the fleet is inserted; the second
  // instance is the one that must start with 1,100 tenants.
  first = await startTestTenantry({ env: ENV });
  const prefix = first.prefix;
  await admin.query(
    format(
      `DO $$ BEGIN
         FOR i IN 0..%s LOOP
           EXECUTE format('CREATE ROLE %%I LOGIN CONNECTION LIMIT 10', %L || 'fleet_' || lpad(i::text, 4, '0'));
         END LOOP;
       END $$`,
      FLEET - 1,
      prefix,
    ),
  );
  for (const slug of ACTIVE) await admin.query(format('ALTER ROLE %I LOGIN PASSWORD %L', prefix + slug, password));
  const control = new pg.Client({ connectionString: withDatabase(testServerUrl(), first.controlDatabase) });
  await control.connect();
  try {
    await control.query(
      `WITH fleet AS (
         SELECT gen_random_uuid() AS id, 'fleet_' || lpad(i::text, 4, '0') AS slug FROM generate_series(0, $1::int - 1) AS i
       ), tenants AS (
         INSERT INTO tenants (id, slug, display_name, status, database_name, role_name, cluster_id, template_name, template_version, updated_at, secured_at)
         SELECT id, slug, slug, 'ACTIVE', $2 || slug, $2 || slug, $3::uuid, 'default', '1.1.0', now(), now() FROM fleet
         RETURNING id
       )
       INSERT INTO quotas (tenant_id, max_connections, updated_by) SELECT id, 10, 'fleet test' FROM tenants`,
      [FLEET, prefix, first.app.parts.clusters.defaultCluster.id],
    );
  } finally {
    await control.end();
  }
  await first.stop();
  const startedAt = Date.now();
  t = await startTestTenantry({ env: ENV, shareWith: first });
  startupMs = Date.now() - startedAt;
});

after(async () => {
  await Promise.all(sessions.map((c) => c.end().catch(() => undefined)));
  await t?.stop();
  await admin
    .query(format(`DO $$ DECLARE r text; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE starts_with(rolname, %L) LOOP EXECUTE format('DROP ROLE %%I', r); END LOOP; END $$`, first.prefix))
    .catch(() => undefined);
  await first.cleanup();
  await t?.cleanup().catch(() => undefined);
  await admin.end();
});

test('1,100 ACTIVE tenants: the server starts, samples once per interval, and streams to per-tenant and all-tenant subscribers without error', async (ctx) => {
  const sampler = t.app.parts.usage.sampler(t.app.parts.clusters.defaultCluster.id)!;
  await until(() => sampler.stats.samples, (n) => n >= 2, 'samples from the new instance');
  assert.equal(sampler.roster.size, FLEET);

  const batches: UsageBatch[] = [];
  const stopListening = t.app.parts.events.onUsage((b: UsageBatch) => batches.push(b));
  const client = wsClient(t.url, t.adminKey);
  const perTenant = subscribeWs(client, USAGE, { slug: ACTIVE[0] }, (d) => d.connectionUsage);
  const sse = subscribeSse(t.url, t.adminKey, USAGE, { slug: ACTIVE[1] }, (d) => d.connectionUsage);
  const everyTenant = subscribeWs(client, USAGE, {}, (d) => d.connectionUsage);
  const batch = subscribeWs(client, BATCH, {}, (d) => d.connectionUsageBatch);
  try {
    for (const slug of ACTIVE) {
      const url = new URL(testServerUrl());
      Object.assign(url, { username: t.prefix + slug, password, pathname: '/postgres' });
      const c = new pg.Client({ connectionString: url.toString() });
      c.on('error', () => undefined);
      await c.connect();
      sessions.push(c);
    }
    await until(() => perTenant.values.at(-1)?.current, (c) => c === 1, 'the per-tenant subscriber to see the session');
    await until(() => sse.values.at(-1)?.current, (c) => c === 1, 'the SSE subscriber to see the session');
    await until(() => new Set(everyTenant.values.filter((v) => v.current > 0).map((v) => v.tenantSlug)).size, (n) => n === ACTIVE.length, 'the all-tenant subscriber to see every active tenant');
    // Heartbeats spread over the period: an all-tenant subscriber hears from idle tenants too, a few per sample.
    await until(() => new Set(everyTenant.values.map((v) => v.tenantSlug)).size, (n) => n >= 50, 'heartbeats of idle tenants');
    await until(() => batch.values.length, (n) => n >= 3, 'batches');

    const before = { samples: sampler.stats.samples, reads: t.app.parts.clusters.defaultCluster.stats.activityReads, messages: batches.length };
    await until(() => sampler.stats.samples, (n) => n >= before.samples + 12, '12 more samples').catch((err: Error) => {
      // Whether the sampler lost its lease or stopped counting (seen once under CI load).
      throw new Error(`${err.message}; sampler ${JSON.stringify(sampler.stats)}`);
    });
    const samples = sampler.stats.samples - before.samples;
    const reads = t.app.parts.clusters.defaultCluster.stats.activityReads - before.reads;
    const messages = batches.length - before.messages;
    // ±1: a sample may be between its read (or its message) and its count at either end of the window.
    assert.ok(Math.abs(reads - samples) <= 1, `${reads} pg_stat_activity reads for ${samples} samples`);
    assert.ok(Math.abs(messages - samples) <= 1, `${messages} bus messages for ${samples} samples`);

    // One message per sample, none carrying the whole fleet.
    const largest = Math.max(...batches.map((b) => b.tenants.length));
    ctx.diagnostic(`start-up with ${FLEET} tenants: ${startupMs} ms (the inventory visits each); largest batch: ${largest} tenants of ${FLEET}`);
    assert.ok(largest < FLEET / 4, `a batch carried ${largest} of ${FLEET} tenants`);
    assert.ok(batches.every((b) => b.clusterId === t.app.parts.clusters.defaultCluster.id));
    const newest = batches.at(-1)!;
    assert.ok(newest.tenants.length < FLEET / 4);

    for (const sub of [perTenant, sse, everyTenant, batch]) assert.deepEqual(sub.errors, []);
    assert.deepEqual(errorLogs(t), []);
    assert.deepEqual(errorLogs(first), []);
  } finally {
    stopListening();
    for (const sub of [perTenant, sse, everyTenant, batch]) sub.stop();
    await client.dispose();
  }
});

test('an idle fleet costs two control-database statements per sample and writes no usage rows', async (ctx) => {
  const sampler = t.app.parts.usage.sampler(t.app.parts.clusters.defaultCluster.id)!;
  // A subscriber keeps the sampler at full rate; nobody's usage changes meanwhile.
  const client = wsClient(t.url, t.adminKey);
  const watcher = subscribeWs(client, USAGE, { slug: ACTIVE[2] }, (d) => d.connectionUsage);
  const control = new pg.Client({ connectionString: withDatabase(testServerUrl(), t.controlDatabase) });
  await control.connect();
  const slot = `${t.controlDatabase}_wal`;
  try {
    await until(() => watcher.values.length, (n) => n >= 1, 'a first value');
    await until(() => sampler.stats.samples, (n) => n >= 3, 'samples');
    // The start-up inventory (1,100 databases that do not exist) and recovery finish first.
    await settle(t);
    await control.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
    const { rows: [db] } = await control.query<{ oid: string }>('SELECT oid::text FROM pg_database WHERE datname = current_database()');
    const versions = async () =>
      (await control.query<{ v: string }>(`SELECT 'u' || tenant_id || xmin AS v FROM tenant_usage UNION ALL SELECT 'm' || tenant_id || minute || xmin FROM usage_minutes`)).rows.map((r) => r.v).sort();
    const rowsBefore = await versions();
    // Settle on a sample boundary, so the window holds whole samples.
    const start = sampler.stats.samples;
    await until(() => sampler.stats.samples, (n) => n > start, 'a sample boundary');
    // A (temporary) replication slot keeps the window's WAL on disk until it is read (a busy server recycles it fast).
    await control.query('SELECT pg_create_physical_replication_slot($1, true, true)', [slot]); // temporary: gone with this session
    // Insert positions, not write positions: with synchronous_commit off the write position lags
    // behind records already made (here: the CREATE EXTENSION above).
    const lsn0 = (await control.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
    const s0 = sampler.stats.samples;
    const q0 = t.app.parts.controlQueries.queries;
    const h0 = sampler.stats.historyRows;
    const c0 = sampler.stats.clusterHistoryRows;
    const e0 = sampler.stats.tenantsExamined;
    await until(() => sampler.stats.samples, (n) => n >= s0 + 20, '20 idle samples');
    const q1 = t.app.parts.controlQueries.queries;
    const s1 = sampler.stats.samples;
    const examined = sampler.stats.tenantsExamined - e0;
    const lsn1 = (await control.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
    // pg_walinspect reads only flushed WAL (the WAL writer gets there within wal_writer_delay).
    const flushed = async () => (await control.query<{ ok: boolean }>('SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS ok', [lsn1])).rows[0]!.ok;
    await until(flushed, (ok) => ok, 'the window flushed');
    const samples = s1 - s0;
    const statements = q1 - q0;
    assert.equal(sampler.stats.historyRows - h0, 0, 'history rows written while nothing changed');
    // A sample looks at the tenants holding sessions and those whose heartbeat is due (about
    // 1/60 of the fleet here), not at the fleet; every tenant at most once in the window (the
    // hour turning, or the roster's full read).
    assert.ok(examined <= (samples + 2) * (ACTIVE.length + 2 * Math.ceil(FLEET / 60)) + FLEET, `${examined} tenants examined in ${samples} samples of a fleet of ${FLEET}`);
    // The cluster's own row (cluster_usage_minutes) follows the server's session count, which
    // other test files move: it is written when that changes, whatever the fleet's size.
    const clusterWrites = sampler.stats.clusterHistoryRows - c0;
    // Only when such rows were written, their WAL is left out: the row, and the lock its foreign
    // key takes on the cluster's row (FOR KEY SHARE).
    const serverRows = clusterWrites > 0 ? '^(cluster_usage_minutes|clusters$)' : '^$';
    // Roster (changes since the last read) and lease renewal; ±2 for a sample half-way at either end.
    assert.ok(statements <= 2 * samples + 2 + clusterWrites, `${statements} control statements for ${samples} samples (${clusterWrites} cluster rows)`);
    assert.deepEqual(await versions(), rowsBefore, 'no tenant_usage or usage_minutes row was rewritten');
    // WAL written by transactions into the control database's own tables, their indexes and
    // TOAST (pg_walinspect, so other test files writing to the same server do not count, and
    // neither does autovacuum's ANALYZE writing pg_statistic after the fleet was inserted): none.
    const wal = await control.query<{ records: number; bytes: number; relations: string[] | null }>(
      `WITH public_tables AS (
         SELECT c.oid, c.reltoastrelid FROM pg_catalog.pg_class c WHERE c.relnamespace = 'public'::pg_catalog.regnamespace
           AND c.relname !~ $4 -- see serverRows
       ), own AS (
         SELECT c.oid, c.relname, pg_catalog.pg_relation_filenode(c.oid)::text AS node FROM pg_catalog.pg_class c
         WHERE c.oid IN (SELECT oid FROM public_tables UNION SELECT reltoastrelid FROM public_tables
                         UNION SELECT i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid IN (SELECT reltoastrelid FROM public_tables))
       ), written AS (
         SELECT r.record_length, m[1] AS node
         FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn) r, pg_catalog.regexp_matches(r.block_ref, 'rel [0-9]+/' || $3 || '/([0-9]+)', 'g') AS m
         WHERE r.xid::text <> '0'
       )
       SELECT count(*)::int AS records, coalesce(sum(w.record_length), 0)::int AS bytes, pg_catalog.array_agg(DISTINCT own.relname) AS relations
       FROM written w JOIN own ON own.node = w.node`,
      [lsn0, lsn1, db!.oid, serverRows],
    );
    ctx.diagnostic(`idle fleet of ${FLEET}: ${statements} statements and ${wal.rows[0]!.bytes} bytes of control-database WAL for ${samples} samples (${wal.rows[0]!.relations ?? 'no table'})`);
    assert.deepEqual(wal.rows[0], { records: 0, bytes: 0, relations: null });
    const persistence = await control.query<{ relpersistence: string }>(`SELECT relpersistence FROM pg_class WHERE relname = 'usage_leases'`);
    assert.equal(persistence.rows[0]!.relpersistence, 'u', 'the lease table is unlogged: renewing it writes no WAL');
  } finally {
    watcher.stop();
    await client.dispose();
    await control.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch(() => undefined);
    await control.end();
  }
});
