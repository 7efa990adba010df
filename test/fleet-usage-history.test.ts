import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { findPgBouncer } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { ClusterHistory, pruneUsageHistory, readFleetUsageHistory } from '../src/modules/usage/usage-history.js';
import { freePort } from './support/free-port.js';
import { until } from './support/subscriptions.js';
import { connectAs, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

const MINUTE = 60_000;
const FLEET = `query($range: UsageRange, $clusterId: ID) { fleetUsageHistory(range: $range, clusterId: $clusterId) { minuteStartAt sessions tenantSessions allocatedConnections } }`;
type Point = { minuteStartAt: string; sessions: number; tenantSessions: number; allocatedConnections: number };
const ENDPOINTS = `query($slug: String!) { tenant(slug: $slug) { endpoints { direct { host port database user } pooled { host port database user } } } }`;

let t: TestTenantry;
const connectionStrings = new Map<string, string>();
const sessions: pg.Client[] = [];

async function provision(slug: string, maxConnections: number): Promise<void> {
  const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  connectionStrings.set(slug, r.data.provisionTenant.connectionString);
}
async function keyFor(slug: string): Promise<string> {
  const r = await t.gql(`mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }`, { input: { name: `${slug} reader`, role: 'TENANT_READER', tenantSlug: slug } });
  return r.data.createApiKey.key;
}

before(async () => {
  t = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200', USAGE_IDLE_SAMPLE_MS: '300' } });
  await provision('fleet-a', 5);
  await provision('fleet-b', 7);
});
after(async () => {
  await Promise.all(sessions.map((c) => c.end().catch(() => undefined)));
  await t.cleanup();
});

describe('Tenant.endpoints', () => {
  test('the host, port, database and user of the connection string, no password; a client connects with them and the password', async () => {
    const r = await t.gql(ENDPOINTS, { slug: 'fleet-a' });
    assert.equal(r.errors, undefined);
    const { direct, pooled } = r.data.tenant.endpoints;
    const url = new URL(connectionStrings.get('fleet-a')!);
    assert.deepEqual(direct, { host: url.hostname, port: Number(url.port), database: decodeURIComponent(url.pathname.slice(1)), user: decodeURIComponent(url.username) });
    assert.equal(pooled, null, 'POOLER=none: no pooled endpoint');
    assert.doesNotMatch(JSON.stringify(r.data), new RegExp(decodeURIComponent(url.password).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

    const client = new pg.Client({ ...direct, password: decodeURIComponent(url.password) });
    await client.connect();
    try {
      assert.deepEqual((await client.query('SELECT current_user AS "user", current_database() AS database')).rows[0], { user: direct.user, database: direct.database });
    } finally {
      await client.end();
    }
  });

  test('the tenant\'s own key sees them; another tenant\'s key sees no tenant at all', async () => {
    const own = await t.gql(ENDPOINTS, { slug: 'fleet-a' }, await keyFor('fleet-a'));
    assert.equal(own.errors, undefined);
    assert.equal(own.data.tenant.endpoints.direct.database, new URL(connectionStrings.get('fleet-a')!).pathname.slice(1));
    const other = await t.gql(ENDPOINTS, { slug: 'fleet-a' }, await keyFor('fleet-b'));
    assert.equal(other.data?.tenant ?? null, null);
  });

  test('null once the tenant has no database', async () => {
    await provision('fleet-gone', 3);
    const d = await t.gql(`mutation { deprovisionTenant(input: { slug: "fleet-gone", confirm: "fleet-gone" }) { userErrors { message } } }`);
    assert.deepEqual(d.errors, undefined);
    const nodes = await until(
      async () => (await t.gql(`{ tenants(filter: { status: [DEPROVISIONED] }) { edges { node { slug endpoints { direct { host } } } } } }`)).data?.tenants.edges.map((e: any) => e.node),
      (n) => n?.length === 1,
      'fleet-gone deprovisioned',
    );
    assert.deepEqual(nodes, [{ slug: 'fleet-gone', endpoints: null }]);
  });
});

describe('Query.fleetUsageHistory', () => {
  test('rows appear after samples with open sessions: the server\'s sessions, the tenants\' and the quotas allocated', async () => {
    for (let i = 0; i < 3; i++) sessions.push(await connectAs(connectionStrings.get('fleet-a')!));
    sessions.push(await connectAs(connectionStrings.get('fleet-b')!));
    const points = await until(
      async () => ((await t.gql(FLEET, { range: 'HOUR' })).data?.fleetUsageHistory ?? []) as Point[],
      (p) => (p.at(-1)?.tenantSessions ?? 0) >= 4,
      'a point with the 4 tenant sessions',
    );
    const now = points.at(-1)!;
    // The minute's maximum: fleet-gone (3) counts too when it was still ACTIVE earlier in this minute.
    assert.ok([12, 15].includes(now.allocatedConnections), `fleet-a (5) + fleet-b (7) [+ fleet-gone (3)] allocated, not ${now.allocatedConnections}`);
    assert.ok(now.sessions >= now.tenantSessions, `${now.sessions} sessions on the server, ${now.tenantSessions} of tenants`);
    assert.ok(points.length <= 61, 'one point per minute');
    assert.equal(new Date(now.minuteStartAt).getTime() % MINUTE, 0);

    const clusterId = (await t.gql(`{ tenant(slug: "fleet-a") { cluster { id } } }`)).data.tenant.cluster.id;
    const one = (await t.gql(FLEET, { range: 'HOUR', clusterId })).data.fleetUsageHistory as Point[];
    // The server's own session count moves with the other test files between the two reads (the
    // leader rewrites the minute's row as it does): all else is the same row.
    const { sessions: oneSessions, ...oneRest } = one.at(-1)!;
    const { sessions: _all, ...allRest } = points.at(-1)!;
    assert.deepEqual(oneRest, allRest, 'the one cluster is the whole fleet here');
    assert.ok(oneSessions >= oneRest.tenantSessions, `${oneSessions} sessions on the server, ${oneRest.tenantSessions} of tenants`);
    const day = (await t.gql(`{ fleetUsageHistory { minuteStartAt } }`)).data.fleetUsageHistory;
    assert.ok(day.length >= 1, 'range defaults to DAY');
  });

  test('the leader writes a row only when a minute\'s maxima differ from the row before', () => {
    const history = new ClusterHistory(null as never, 'cluster');
    const t0 = 100 * MINUTE;
    const totals = (sessions: number) => ({ sessions, tenantSessions: sessions - 1, allocatedConnections: 20 });
    assert.deepEqual(history.observe(totals(5), t0), { minute: t0, ...totals(5) }, 'the first sample');
    assert.equal(history.observe(totals(5), t0 + 1000), null, 'same minute, same values');
    assert.equal(history.observe(totals(5), t0 + MINUTE), null, 'the next minute, unchanged: the row before holds');
    assert.deepEqual(history.observe(totals(8), t0 + MINUTE + 1000), { minute: t0 + MINUTE, ...totals(8) }, 'a new maximum');
    assert.equal(history.observe(totals(2), t0 + MINUTE + 2000), null, 'the minute\'s maximum is still 8');
    assert.deepEqual(history.observe(totals(2), t0 + 2 * MINUTE), { minute: t0 + 2 * MINUTE, ...totals(2) }, 'the next minute steps down');
  });

  test('admins only: a tenant key is FORBIDDEN; an unknown cluster is NOT_FOUND', async () => {
    const r = await t.gql(FLEET, {}, await keyFor('fleet-a'));
    assert.equal(r.data, null);
    assert.equal(r.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    const unknown = await t.gql(FLEET, { clusterId: '00000000-0000-0000-0000-000000000000' });
    assert.equal(unknown.errors?.[0]?.extensions?.code, 'NOT_FOUND');
  });

  test('clusters are summed, each row holding until its next one; pruning keeps the row in effect at the cut', async () => {
    const db = t.app.parts.db;
    const other = await db.cluster.create({ data: { name: `fleet-test-${Date.now()}`, connectionUrl: 'postgresql://nobody@127.0.0.1:1/postgres' } });
    try {
      const now = Math.floor(Date.now() / MINUTE) * MINUTE;
      const at = (minutesAgo: number) => new Date(now - minutesAgo * MINUTE);
      await db.clusterUsageMinute.createMany({
        data: [
          { clusterId: other.id, minute: at(10 * 24 * 60), sessions: 1, tenantSessions: 1, allocatedConnections: 10 },
          { clusterId: other.id, minute: at(9 * 24 * 60), sessions: 100, tenantSessions: 90, allocatedConnections: 200 },
          { clusterId: other.id, minute: at(30), sessions: 50, tenantSessions: 40, allocatedConnections: 200 },
        ],
      });
      const alone = await readFleetUsageHistory(db, 3600, other.id, now);
      assert.equal(alone.length, 61, 'from the start of the hour: the row from 9 days ago is in effect');
      assert.deepEqual(alone.slice(0, 30).map((p) => p.sessions), Array(30).fill(100));
      assert.deepEqual(alone.slice(30).map((p) => p.sessions), Array(31).fill(50));

      const both = await readFleetUsageHistory(db, 3600, null, now);
      const mine = await readFleetUsageHistory(db, 3600, t.app.parts.clusters.defaultCluster.id, now);
      const last = both.at(-1)!;
      assert.equal(last.allocatedConnections, 200 + mine.at(-1)!.allocatedConnections);
      assert.equal(last.tenantSessions, 40 + mine.at(-1)!.tenantSessions);

      await pruneUsageHistory(db, 1);
      const kept = await db.clusterUsageMinute.findMany({ where: { clusterId: other.id }, orderBy: { minute: 'asc' } });
      assert.deepEqual(kept.map((r) => r.sessions), [100, 50], 'the oldest row goes; the one in effect at the cut stays');
    } finally {
      await db.cluster.delete({ where: { id: other.id } });
    }
  });
});

describe('Tenant.endpoints through PgBouncer', () => {
  if (!findPgBouncer() && process.env.CI !== 'true') {
    test('the pooled endpoint', { skip: 'pgbouncer is not installed; with CI=true this fails' }, () => {});
    return;
  }
  test('the pooled endpoint is the pooled connection string\'s, and a client connects through it', async () => {
    const poolerDir = await mkdtemp(join(tmpdir(), 'tenantry-pooler-'));
    const p = await startTestTenantry({ env: { POOLER: 'pgbouncer', POOLER_PORT: String(await freePort()), POOLER_DIR: poolerDir } });
    try {
      const r = await p.gql(PROVISION, { input: { slug: 'pooled-endpoints', displayName: 'pooled', maxConnections: 3 } });
      assert.deepEqual(r.data.provisionTenant.userErrors, []);
      const url = new URL(r.data.provisionTenant.pooledConnectionString);
      const { pooled } = (await p.gql(ENDPOINTS, { slug: 'pooled-endpoints' })).data.tenant.endpoints;
      assert.deepEqual(pooled, { host: url.hostname, port: Number(url.port), database: decodeURIComponent(url.pathname.slice(1)), user: decodeURIComponent(url.username) });
      const client = new pg.Client({ ...pooled, password: decodeURIComponent(url.password) });
      await client.connect();
      try {
        assert.equal((await client.query('SELECT current_user AS u')).rows[0].u, pooled.user);
      } finally {
        await client.end();
      }
    } finally {
      await p.cleanup();
      await rm(poolerDir, { recursive: true, force: true });
    }
  });
});
