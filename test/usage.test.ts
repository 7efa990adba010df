import assert from 'node:assert/strict';
import type { UsageBatch } from '../src/modules/usage/usage-sample.js';
import { createConnection } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { pruneUsageHistory, readPeaks24h, readUsageHistory, UsageHistory } from '../src/modules/usage/usage-history.js';
import { subscribeSse, subscribeWs, until, wsClient } from './support/subscriptions.js';
import { inDatabase } from './support/templates.js';
import { connectAs, fewestStatements, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

const USAGE = `subscription($slug: String) { connectionUsage(tenantSlug: $slug) { tenantSlug current max usagePercent peak24h byState { state count } busiest { pid query } pooled poolerIdle direct sampledAt } }`;
type Usage = { tenantSlug: string; current: number; max: number; usagePercent: number; peak24h: number; busiest: { pid: number; query: string }[]; pooled: number | null };
const pickUsage = (d: any): Usage => d.connectionUsage;
const last = <T>(xs: T[]) => xs[xs.length - 1];

let t: TestTenantry;
const sessions = new Set<pg.Client>();
const credentials = new Map<string, string>();

async function provision(tt: TestTenantry, slug: string, maxConnections = 10) {
  const r = await tt.gql(PROVISION, { input: { slug, displayName: slug, maxConnections } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  credentials.set(slug, r.data.provisionTenant.connectionString);
  return r.data.provisionTenant.tenant as { id: string; roleName: string };
}
async function open(slug: string): Promise<pg.Client> {
  const c = await connectAs(credentials.get(slug)!);
  sessions.add(c);
  return c;
}
async function close(c: pg.Client): Promise<void> {
  sessions.delete(c);
  await c.end();
}
async function keyFor(slug: string, role = 'TENANT_READER'): Promise<string> {
  const r = await t.gql(`mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }`, { input: { name: `${slug} key`, role, tenantSlug: slug } });
  return r.data.createApiKey.key;
}

before(async () => {
  t = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200', USAGE_IDLE_SAMPLE_MS: '2000', MAX_SUBSCRIPTIONS_PER_SOCKET: '20' } });
  await provision(t, 'watched', 10);
  await provision(t, 'other', 10);
  await provision(t, 'busy', 4);
});
after(async () => {
  await Promise.all([...sessions].map((c) => c.end().catch(() => undefined)));
  await t.cleanup();
});

const sampler = (tt: TestTenantry) => tt.app.parts.usage.sampler(tt.app.parts.clusters.defaultCluster.id)!;

describe('subscriptions', () => {
  test('a graphql-ws and an SSE subscriber see current follow real connections', async () => {
    const client = wsClient(t.url, t.adminKey);
    const ws = subscribeWs(client, USAGE, { slug: 'watched' }, pickUsage);
    const sse = subscribeSse(t.url, t.adminKey, USAGE, { slug: 'watched' }, pickUsage);
    try {
      for (const sub of [ws, sse]) await until(() => last(sub.values)?.current, (c) => c === 0, 'a first value of 0');
      const a = await open('watched');
      const b = await open('watched');
      for (const sub of [ws, sse]) await until(() => last(sub.values)?.current, (c) => c === 2, 'current = 2');
      assert.equal(last(ws.values)!.max, 10);
      assert.equal(last(ws.values)!.usagePercent, 20);
      await close(a);
      for (const sub of [ws, sse]) await until(() => last(sub.values)?.current, (c) => c === 1, 'current = 1');
      await close(b);
      for (const sub of [ws, sse]) await until(() => last(sub.values)?.current, (c) => c === 0, 'current = 0');
      assert.ok(last(ws.values)!.peak24h >= 2);
      assert.equal(last(ws.values)!.pooled, null, 'POOLER=none: no pooled counts');
      assert.deepEqual([ws.errors, sse.errors], [[], []]);
    } finally {
      ws.stop();
      sse.stop();
      await client.dispose();
    }
  });

  test('200 subscribers on one tenant (and 20 over SSE): still one pg_stat_activity query per interval, and no MaxListenersExceededWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    const clients = Array.from({ length: 10 }, () => wsClient(t.url, t.adminKey));
    const subs = clients.flatMap((c) => Array.from({ length: 20 }, () => subscribeWs(c, USAGE, { slug: 'watched' }, pickUsage)));
    const sses = Array.from({ length: 20 }, () => subscribeSse(t.url, t.adminKey, USAGE, { slug: 'watched' }, pickUsage));
    try {
      await until(() => subs.filter((s) => s.values.length > 0).length, (n) => n === 200, 'a first value for all 200');
      await until(() => sses.filter((s) => s.values.length > 0).length, (n) => n === 20, 'a first value for the 20 over SSE');
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      assert.match(metrics, /^tenantry_usage_subscribers 220$/m);

      // Counted on the cluster's admin connection: every statement that reads pg_stat_activity,
      // from the sampler or anyone else, against the samples taken meanwhile.
      const s = sampler(t);
      const cluster = t.app.parts.clusters.defaultCluster;
      const before = { samples: s.stats.samples, reads: cluster.stats.activityReads };
      const c = await open('watched');
      await until(() => subs.filter((x) => last(x.values)?.current === 1).length, (n) => n === 200, 'all 200 to see current = 1');
      await until(() => s.stats.samples, (n) => n >= before.samples + 10, '10 more samples');
      const samples = s.stats.samples - before.samples;
      const reads = cluster.stats.activityReads - before.reads;
      // ±1: a sample may be between its read and its count at either end of the window.
      assert.ok(Math.abs(reads - samples) <= 1, `${reads} pg_stat_activity reads for ${samples} samples with 200 subscribers`);
      await close(c);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings.filter((w) => /MaxListeners/.test(w)), []);
    } finally {
      process.off('warning', onWarning);
      for (const sub of [...subs, ...sses]) sub.stop();
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });

  test('a socket holds at most MAX_SUBSCRIPTIONS_PER_SOCKET operations', async () => {
    const client = wsClient(t.url, t.adminKey);
    const subs = Array.from({ length: 21 }, () => subscribeWs(client, USAGE, { slug: 'watched' }, pickUsage));
    try {
      await until(() => subs.filter((s) => s.values.length > 0 || s.errors.length > 0).length, (n) => n === 21, 'all 21 to answer');
      const refused = subs.filter((s) => s.errors.length > 0);
      assert.equal(refused.length, 1);
      assert.match(JSON.stringify(refused[0]!.errors), /at most 20 operations per connection/);
    } finally {
      for (const sub of subs) sub.stop();
      await client.dispose();
    }
  });

  test('a tenant key may subscribe to its own tenant only; no key is refused at connection_init', async () => {
    const key = await keyFor('watched');
    const mine = wsClient(t.url, key);
    const own = subscribeWs(mine, USAGE, { slug: 'watched' }, pickUsage);
    const implicit = subscribeWs(mine, USAGE, {}, pickUsage);
    const theirs = subscribeWs(mine, USAGE, { slug: 'other' }, pickUsage);
    const sseTheirs = subscribeSse(t.url, key, USAGE, { slug: 'other' }, pickUsage);
    let closedWith = 0;
    const anonymous = wsClient(t.url, null, (code) => (closedWith = code));
    const none = subscribeWs(anonymous, USAGE, { slug: 'watched' }, pickUsage);
    try {
      await until(() => own.values.length && implicit.values.length, Boolean, 'own values');
      assert.equal(own.values[0]!.tenantSlug, 'watched');
      assert.equal(implicit.values[0]!.tenantSlug, 'watched');
      await until(() => theirs.errors.length, Boolean, 'an error for another tenant');
      assert.match(JSON.stringify(theirs.errors), /no tenant other/);
      assert.deepEqual(theirs.values, []);
      await until(() => sseTheirs.errors.length, Boolean, 'an SSE error for another tenant');
      assert.deepEqual(sseTheirs.values, []);
      await until(() => closedWith, (c) => c !== 0, 'the anonymous socket to close');
      assert.equal(closedWith, 4403);
      assert.deepEqual(none.values, []);

      // clusterUsage is for admins.
      const cluster = subscribeWs(mine, `subscription($id: ID!) { clusterUsage(clusterId: $id) { current } }`, { id: t.app.parts.clusters.defaultCluster.id }, (d) => d);
      await until(() => cluster.errors.length, Boolean, 'clusterUsage refused');
      assert.match(JSON.stringify(cluster.errors), /FORBIDDEN|not allowed/);

    } finally {
      for (const s of [own, implicit, theirs, sseTheirs, none]) s.stop();
      await mine.dispose();
      await anonymous.dispose();
    }
  });

  test('an admin subscribes to every tenant, and to the cluster', async () => {
    const client = wsClient(t.url, t.adminKey);
    const all = subscribeWs(client, USAGE, {}, pickUsage);
    const cluster = subscribeWs(client, `subscription($id: ID!) { clusterUsage(clusterId: $id) { current tenantConnections tenantCount maxConnections sampledAt } }`, { id: t.app.parts.clusters.defaultCluster.id }, (d) => d.clusterUsage);
    try {
      await until(() => new Set(all.values.map((v) => v.tenantSlug)).size, (n) => n >= 3, 'values for every tenant');
      const c = await open('other');
      await until(() => last(cluster.values)?.tenantConnections, (n) => n >= 1, 'the cluster to count the session');
      assert.equal(last(cluster.values).tenantCount, 3);
      await close(c);
    } finally {
      all.stop();
      cluster.stop();
      await client.dispose();
    }
  });
});

describe('one message per sample', () => {
  test('connectionUsageBatch lists a sample\'s changed tenants; a deprovisioned tenant is listed as removed and its series leave /metrics', async () => {
    await provision(t, 'leaving', 3);
    const client = wsClient(t.url, t.adminKey);
    const batches = subscribeWs(client, `subscription { connectionUsageBatch { sampledAt usage { tenantSlug current } removedTenantSlugs } }`, {}, (d) => d.connectionUsageBatch);
    const heard: string[] = [];
    const stop = t.app.parts.events.onUsage((b: UsageBatch) => heard.push(b.sampledAt));
    try {
      const c = await open('leaving');
      await until(() => batches.values.some((b: any) => b.usage.some((u: any) => u.tenantSlug === 'leaving' && u.current === 1)), Boolean, 'a batch with the session');
      await until(() => fetch(`${t.url}/metrics`).then((r) => r.text()), (m) => /^tenantry_tenant_connections\{tenant="leaving"\} 1$/m.test(m), 'the tenant in /metrics');
      await close(c);
      // Every batch is one sample: no two messages carry the same sampledAt.
      assert.equal(new Set(heard).size, heard.length);
      const d = await t.gql(`mutation { deprovisionTenant(input: { slug: "leaving", confirm: "leaving" }) { userErrors { code } } }`);
      assert.deepEqual(d.data.deprovisionTenant.userErrors, []);
      await until(() => batches.values.some((b: any) => b.removedTenantSlugs.includes('leaving')), Boolean, 'a batch listing the tenant as removed');
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      assert.doesNotMatch(metrics, /tenant="leaving"/);
      assert.deepEqual(batches.errors, []);
    } finally {
      stop();
      batches.stop();
      await client.dispose();
    }
  });

  test('an every-tenant subscriber hears the samples published while it was starting (it is subscribed before its opening values)', async () => {
    const usage = t.app.parts.usage;
    const s = sampler(t);
    await until(() => s.lease.epoch, (e) => e !== null, 'the lease');
    const all = usage.watchAll(() => true);
    try {
      // Published before the subscriber reads anything.
      const probe = { tenantId: '00000000-0000-4000-8000-000000000001', tenantSlug: 'race-probe', clusterId: t.app.parts.clusters.defaultCluster.id, current: 1, max: 2, usagePercent: 50, peak24h: 1, byState: [], pooled: null, poolerIdle: null, direct: null, busiest: [], sampledAt: new Date().toISOString() };
      t.app.parts.events.publishUsage({ clusterId: probe.clusterId, epoch: s.lease.epoch!, leader: 'test', sampledAt: probe.sampledAt, tenants: [probe], removed: [], cluster: null });
      await new Promise((r) => setTimeout(r, 50));
      const seen: string[] = [];
      for (;;) {
        const next = await all.next();
        seen.push(next.value!.tenantSlug);
        if (next.value!.tenantSlug === 'race-probe') break;
        assert.ok(seen.length < 100, `no probe among ${seen.join(', ')}`);
      }
    } finally {
      await all.return!();
    }
    t.app.parts.metrics.removeTenant('race-probe');
  });
});

describe('what the API shows', () => {
  test('query text is cut to 100 characters with literals masked, in connections and in the busiest backends', async () => {
    const c = await open('busy');
    const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const running = c.query(`SELECT pg_sleep(30), 'card 4111-1111-1111-1111' AS secret, 31337 AS n, '${'x'.repeat(200)}' AS padding`).catch(() => undefined);
    try {
      const connections = await until(
        async () => (await t.gql(`{ tenant(slug: "busy") { connections { pid state applicationName durationSeconds query } } }`)).data.tenant.connections,
        (rows: any[]) => rows.some((r) => r.state === 'ACTIVE'),
        'the active query',
      );
      const row = connections.find((r: any) => r.pid === pid);
      assert.equal(row.query, 'SELECT pg_sleep(?), ? AS secret, ? AS n, ? AS padding');
      assert.ok(row.query.length <= 100);
      const usage = await until(
        async () => (await t.gql(`{ tenant(slug: "busy") { usage { busiest { pid query } } } }`)).data.tenant.usage,
        (u: any) => u.busiest.length > 0,
        'a busiest backend',
      );
      assert.deepEqual(usage.busiest[0], { pid, query: 'SELECT pg_sleep(?), ? AS secret, ? AS n, ? AS padding' });
      const all = JSON.stringify(connections) + JSON.stringify(usage);
      assert.ok(!all.includes('4111') && !all.includes('31337') && !all.includes('xxxx'));
    } finally {
      await t.gql(`mutation($pid: Int!) { terminateConnection(input: { slug: "busy", pid: $pid }) { userErrors { code } } }`, { pid });
      await running;
      sessions.delete(c);
    }
  });

  test('tenants ordered by USAGE_PERCENT: closest to the limit first, paginated, one query per page', async () => {
    const held = [await open('busy'), await open('busy'), await open('busy'), await open('watched')];
    try {
      await until(
        async () => (await t.app.parts.db.tenantUsage.findMany({ where: { current: { gt: 0 } }, include: { tenant: true } })).map((u) => `${u.tenant.slug}=${u.current}`).sort().join(','),
        (v) => v === 'busy=3,watched=1',
        'samples recorded',
      );
      const q = `query($after: String) { tenants(first: 2, after: $after, orderBy: { field: USAGE_PERCENT, direction: DESC }) {
        edges { node { slug usage { usagePercent } } } pageInfo { hasNextPage endCursor } } }`;
      const { statements: spent, result: first } = await fewestStatements(t, () => t.gql(q, {}));
      assert.deepEqual(first.data.tenants.edges.map((e: any) => e.node.slug), ['busy', 'watched']);
      assert.equal(first.data.tenants.edges[0].node.usage.usagePercent, 75);
      const second = await t.gql(q, { after: first.data.tenants.pageInfo.endCursor });
      assert.deepEqual(second.data.tenants.edges.map((e: any) => e.node.slug), ['other']);
      assert.ok(spent <= 4, `${spent} control-database queries for a page`);
    } finally {
      for (const c of held) await close(c);
    }
  });

  test('usage history records per-minute maxima and prunes what is older than the retention', async () => {
    const tenant = await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'busy' } });
    const held = [await open('busy'), await open('busy'), await open('busy')];
    try {
      await until(
        async () => (await t.gql(`{ tenant(slug: "busy") { usageHistory(range: HOUR) { minuteStartAt peakConnections maxConnections } } }`)).data.tenant.usageHistory,
        (history: any[]) => history.some((p) => p.peakConnections === 3 && p.maxConnections === 4),
        'a minute with a peak of 3',
      );
    } finally {
      for (const c of held) await close(c);
    }

    // Two rows older than the retention: the newer one holds the value at the window's start and stays.
    const older = new Date(Date.now() - 10 * 86_400_000);
    older.setSeconds(0, 0);
    const old = new Date(Date.now() - 9 * 86_400_000);
    old.setSeconds(0, 0);
    await t.app.parts.db.usageMinute.createMany({ data: [older, old].map((minute) => ({ tenantId: tenant.id, minute, peakConnections: 4, maxConnections: 4 })) });
    const week = (await t.gql(`{ tenant(slug: "busy") { usageHistory(range: WEEK) { minuteStartAt } } }`)).data.tenant.usageHistory;
    assert.ok(!week.some((p: any) => Date.parse(p.minuteStartAt) === old.getTime()), 'WEEK covers 7 days');
    assert.ok(week.length <= 7 * 1440 + 1, `${week.length} points: at most one per minute`);
    const removed = await pruneUsageHistory(t.app.parts.db, 8);
    assert.ok(removed >= 1);
    assert.equal(await t.app.parts.db.usageMinute.count({ where: { tenantId: tenant.id, minute: older } }), 0);
    assert.equal(await t.app.parts.db.usageMinute.count({ where: { tenantId: tenant.id, minute: old } }), 1, 'the row in effect at the cut stays');
    assert.ok((await t.app.parts.db.usageMinute.count({ where: { tenantId: tenant.id, minute: { gt: old } } })) >= 1, 'recent minutes stay');
  });

  test('history is a step function (a row when the minute\'s maximum changes): usageHistory and peak24h fill the minutes between rows', async () => {
    // A tenant no sampler looks at (not ACTIVE), with hand-made rows.
    const cluster = t.app.parts.clusters.defaultCluster.id;
    const tenant = await t.app.parts.db.tenant.create({
      data: { slug: 'stepped', displayName: 'stepped', status: 'SUSPENDED', databaseName: `${t.prefix}stepped`, roleName: `${t.prefix}stepped`, clusterId: cluster, templateName: 'default', templateVersion: '1.1.0' },
    });
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000);
    await t.app.parts.db.usageMinute.createMany({
      data: [
        { minute: at(26 * 60), peak: 7 }, // in effect as the last 24 hours began
        { minute: at(23 * 60), peak: 1 },
        { minute: at(10), peak: 2 },
        { minute: at(5), peak: 4 },
        { minute: at(2), peak: 0 },
      ].map((r) => ({ tenantId: tenant.id, minute: r.minute, peakConnections: r.peak, maxConnections: 9 })),
    });
    const hour = await readUsageHistory(t.app.parts.db, tenant.id, 3600, now + 30_000);
    assert.equal(hour.length, 60, 'one point per minute of the last hour');
    const valueAt = (minutesAgo: number) => hour.find((p) => p.minute.getTime() === at(minutesAgo).getTime())?.peakConnections;
    assert.deepEqual([59, 11, 10, 9, 6, 5, 3, 2, 1, 0].map(valueAt), [1, 1, 2, 2, 2, 4, 4, 0, 0, 0]);
    assert.ok(hour.every((p) => p.maxConnections === 9));
    assert.equal((await readPeaks24h(t.app.parts.db, [tenant.id])).get(tenant.id), 7, 'the value in effect as the window began counts');
    // A new sampling leader starts from the same rows (its 24 hours are whole hours: 24 to 25 hours back).
    const history = new UsageHistory(t.app.parts.db);
    await history.load([tenant.id], now + 30_000);
    assert.equal(history.peak24h(tenant.id, now + 30_000), 7);
    const sample = { tenantId: tenant.id, tenantSlug: 'stepped', clusterId: cluster, current: 0, max: 9, usagePercent: 0, peak24h: 7, byState: [], pooled: null, poolerIdle: null, direct: null, busiest: [], sampledAt: new Date(now + 30_000).toISOString() };
    assert.equal(history.observe(sample, now + 30_000).minute, null, 'an unchanged value writes no row');
    assert.deepEqual(history.observe({ ...sample, current: 3 }, now + 40_000).minute, { tenantId: tenant.id, minute: now, peak: 3, max: 9 });
    assert.equal(history.observe({ ...sample, current: 1 }, now + 50_000).minute, null, 'a lower value in the same minute keeps its maximum');
    assert.deepEqual(history.observe({ ...sample, current: 1 }, now + 70_000).minute, { tenantId: tenant.id, minute: now + 60_000, peak: 1, max: 9 });
    // What a sampler relies on to stop looking at a tenant that has no session: its 0 is recorded.
    assert.equal(history.atRest(tenant.id), false, 'its latest row records a session');
    assert.equal(history.observe({ ...sample, current: 0 }, now + 80_000).minute, null, 'no session, in the same minute: its maximum stays');
    assert.equal(history.atRest(tenant.id), false, 'the 0 is not recorded yet');
    assert.deepEqual(history.observe({ ...sample, current: 0 }, now + 130_000).minute, { tenantId: tenant.id, minute: now + 120_000, peak: 0, max: 9 });
    assert.equal(history.atRest(tenant.id), true, 'the 0 is recorded');
    await t.app.parts.db.usageMinute.deleteMany({ where: { tenantId: tenant.id, minute: at(26 * 60) } });
    assert.equal((await readPeaks24h(t.app.parts.db, [tenant.id])).get(tenant.id), 4);
  });

  test('a page of idle tenants answers from what the leader recorded, not from a live read; sessions still show', async () => {
    // A leader publishes a tenant only when its value moves, so a restarted Tenantry (the leader
    // again) has never heard its idle tenants: each page of them read pg_stat_activity and every
    // PgBouncer's SHOW SERVERS, which grow with the fleet (340 ms a page at 10,000 tenants).
    const env = { USAGE_SAMPLE_MS: '200', USAGE_IDLE_SAMPLE_MS: '1000' };
    const first = await startTestTenantry({ env });
    let second: TestTenantry | undefined;
    const PAGE = `{ tenants(first: 10) { edges { node { slug quota { maxConnections } usage { current max usagePercent byState { state count } busiest { pid } } } } } }`;
    const usage = async (tt: TestTenantry) => {
      const r = await tt.gql(PAGE);
      assert.equal(r.errors, undefined, JSON.stringify(r.errors));
      return Object.fromEntries(r.data.tenants.edges.map((e: any) => [e.node.slug, e.node.usage]));
    };
    try {
      const made = await Promise.all(['idle-a', 'idle-b'].map((slug) => first.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 6 } })));
      const cs = made[0]!.data.provisionTenant.connectionString as string;
      const recorded = () => inDatabase(first.controlDatabase, async (c) => (await c.query('SELECT count(*)::int AS n FROM tenant_usage WHERE current = 0')).rows[0].n);
      await until(recorded, (n) => n === 2, 'both tenants recorded idle by the leader');
      await first.stop();

      second = await startTestTenantry({ env, shareWith: first });
      await until(() => sampler(second!).stats.samples, (n) => n >= 2, 'the new leader to sample');
      const reads = second.app.parts.usage.stats.liveReads;
      const idle = { current: 0, max: 6, usagePercent: 0, byState: [], busiest: [] };
      assert.deepEqual(await usage(second), { 'idle-a': idle, 'idle-b': idle });
      assert.equal(second.app.parts.usage.stats.liveReads, reads, 'no live read for tenants recorded idle');

      // The quota is the one now, not the one of the last sample.
      const raised = await second.gql(`mutation { updateTenantQuota(input: { slug: "idle-a", maxConnections: 8 }) { userErrors { code } } }`);
      assert.deepEqual(raised.data.updateTenantQuota.userErrors, []);
      assert.equal((await usage(second))['idle-a'].max, 8);

      // A session: the leader publishes it, and the page shows it.
      const session = await connectAs(cs);
      sessions.add(session);
      await until(async () => (await usage(second!))['idle-a'].current, (n) => n === 1, 'the session on the page');
      await close(session);
      await until(async () => (await usage(second!))['idle-a'].current, (n) => n === 0, 'the session gone from the page');
    } finally {
      await second?.stop();
      await first.cleanup();
    }
  });

  test('/metrics has per-tenant usage, quota updates, samples and their duration', async () => {
    const roster = sampler(t).roster.stats;
    const fullReads = roster.fullReads;
    await t.gql(`mutation { updateTenantQuota(input: { slug: "other", maxConnections: 11 }) { userErrors { code } } }`);
    const full = [await open('busy'), await open('busy'), await open('busy'), await open('busy')];
    const metrics = () => fetch(`${t.url}/metrics`).then((r) => r.text());
    let text: string;
    try {
      text = await until(metrics, (m) => /^tenantry_tenant_connection_limit\{tenant="other"\} 11$/m.test(m) && /tenantry_tenant_at_limit_samples_total\{tenant="busy"\} [1-9]/.test(m), 'the next sample in /metrics');
    } finally {
      for (const c of full) await close(c);
    }
    assert.match(text, /^tenantry_tenant_connections\{tenant="watched"\} \d+$/m);
    assert.match(text, /^tenantry_tenant_connection_usage_ratio\{tenant="busy"\} [\d.]+$/m);
    assert.match(text, /^tenantry_quota_updates_total 1$/m);
    assert.match(text, /^tenantry_usage_samples_total\{cluster="default"\} [1-9]\d*$/m);
    assert.match(text, /^tenantry_usage_sample_duration_seconds_count\{cluster="default"\} [1-9]\d*$/m);
    assert.match(text, /^tenantry_tenant_at_limit_samples_total\{tenant="busy"\} [1-9]\d*$/m);
    // The new quota reached the sampler through the roster's change stamps, not a full read.
    assert.equal(roster.fullReads, fullReads);
    assert.ok(roster.changeReads > 0);
  });

  test('the sampler reads only changed tenant rows, and a transaction held open in another database does not make it re-read them', async () => {
    const s = sampler(t);
    // A write transaction left open elsewhere on the server (as a tenant could leave one).
    const elsewhere = await t.admin.connect();
    try {
      await elsewhere.query('BEGIN');
      await elsewhere.query('SELECT pg_current_xact_id()');
      const max = async () => (await t.app.parts.usage.usageOf([(await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'watched' } })).id]))[0]?.max;
      await t.gql(`mutation { updateTenantQuota(input: { slug: "watched", maxConnections: 12 }) { userErrors { code } } }`);
      await until(() => s.roster.get([...s.roster.tenants].find((e) => e.slug === 'watched')!.id)?.maxConnections, (m) => m === 12, 'the sampler to read the new quota');
      const read = s.roster.stats.rowsRead;
      const samples = s.stats.samples;
      await until(() => s.stats.samples, (n) => n >= samples + 5, '5 more samples');
      assert.equal(s.roster.stats.rowsRead, read, 'rows re-read while nothing changed');
      await until(max, (m) => m === 12, 'the new quota in Tenant.usage');
    } finally {
      await elsewhere.query('ROLLBACK');
      elsewhere.release();
      await t.gql(`mutation { updateTenantQuota(input: { slug: "watched", maxConnections: 10 }) { userErrors { code } } }`);
    }
  });
});

// Redis runs on CI (.ci/run starts it); elsewhere the replica test is skipped without it.
const redisReachable = await new Promise<boolean>((resolve) => {
  const socket = createConnection({ host: '127.0.0.1', port: 6379 }, () => {
    socket.end();
    resolve(true);
  });
  socket.on('error', () => resolve(false));
});
const noRedis = redisReachable || process.env.CI === 'true' ? false : 'Redis is not running on 127.0.0.1:6379; with CI=true this fails';

describe('replicas', () => {
  test('two servers sharing Redis: one samples, a subscriber on the other sees its samples, and the other takes over when it dies', { skip: noRedis }, async () => {
    const env = { REDIS_URL: 'redis://127.0.0.1:6379', USAGE_SAMPLE_MS: '200', USAGE_IDLE_SAMPLE_MS: '1000' };
    const a = await startTestTenantry({ env });
    const b = await startTestTenantry({ env, shareWith: a });
    let client: ReturnType<typeof wsClient> | undefined;
    try {
      const r = await a.gql(PROVISION, { input: { slug: 'shared', displayName: 'shared', maxConnections: 5 } });
      const cs = r.data.provisionTenant.connectionString as string;
      await until(() => sampler(a).stats.leader || sampler(b).stats.leader, Boolean, 'a leader');
      const [leader, follower] = sampler(a).stats.leader ? [a, b] : [b, a];
      assert.equal(sampler(follower).stats.activityQueries, 0, `only the leader reads pg_stat_activity (${JSON.stringify([sampler(leader).stats, sampler(follower).stats])})`);

      client = wsClient(follower.url, follower.adminKey);
      const sub = subscribeWs(client, USAGE, { slug: 'shared' }, pickUsage);
      const s1 = await connectAs(cs);
      sessions.add(s1);
      await until(() => last(sub.values)?.current, (c) => c === 1, 'the follower\'s subscriber to see the leader\'s sample');
      assert.equal(sampler(follower).stats.activityQueries, 0);
      // At most one read for the first value, if the leader's samples had not reached it yet.
      assert.ok(follower.app.parts.usage.stats.liveReads <= 1);

      await leader.stop();
      await until(() => sampler(follower).stats.leader, Boolean, 'the follower to take over');
      const s2 = await connectAs(cs);
      sessions.add(s2);
      await until(() => last(sub.values)?.current, (c) => c === 2, 'samples from the new leader');
      sub.stop();
    } finally {
      await client?.dispose();
      await b.stop();
      await a.cleanup();
      await b.cleanup().catch(() => undefined);
    }
  });

  test('two servers sharing Redis: a key revoked on one ends its subscriptions on the other; a deprovisioned tenant leaves both /metrics', { skip: noRedis }, async () => {
    const env = { REDIS_URL: 'redis://127.0.0.1:6379', USAGE_SAMPLE_MS: '200', USAGE_IDLE_SAMPLE_MS: '1000' };
    const a = await startTestTenantry({ env });
    const b = await startTestTenantry({ env, shareWith: a });
    let client: ReturnType<typeof wsClient> | undefined;
    try {
      for (const slug of ['kept', 'gone']) {
        const r = await a.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5 } });
        assert.deepEqual(r.data.provisionTenant.userErrors, []);
        credentials.set(slug, r.data.provisionTenant.connectionString);
      }
      const k = await a.gql(`mutation { createApiKey(input: { name: "on b", role: TENANT_READER, tenantSlug: "kept" }) { key apiKey { id } } }`);
      const { key, apiKey } = k.data.createApiKey;
      let closedWith = 0;
      client = wsClient(b.url, key, (code) => (closedWith = code));
      const ws = subscribeWs(client, USAGE, { slug: 'kept' }, pickUsage);
      const sse = subscribeSse(b.url, key, USAGE, { slug: 'kept' }, pickUsage);
      for (const sub of [ws, sse]) await until(() => sub.values.length, (n) => n > 0, 'a first value on b');
      const held = await open('gone');
      const metricsOf = (x: TestTenantry) => fetch(`${x.url}/metrics`).then((r) => r.text());
      for (const x of [a, b]) await until(() => metricsOf(x), (m) => /^tenantry_tenant_connections\{tenant="gone"\} 1$/m.test(m), 'the session in both /metrics');
      await close(held);

      const revoked = await a.gql(`mutation($id: ID!) { revokeApiKey(input: { id: $id }) { userErrors { code } } }`, { id: apiKey.id });
      assert.deepEqual(revoked.data.revokeApiKey.userErrors, []);
      await until(() => closedWith, (c) => c !== 0, 'b\'s socket to close');
      assert.equal(closedWith, 4403);
      await until(() => sse.done, Boolean, 'b\'s SSE stream to end');
      assert.match(JSON.stringify(sse.errors), /KEY_REVOKED/);

      const d = await a.gql(`mutation { deprovisionTenant(input: { slug: "gone", confirm: "gone" }) { userErrors { code } } }`);
      assert.deepEqual(d.data.deprovisionTenant.userErrors, []);
      for (const x of [a, b]) await until(() => metricsOf(x), (m) => !/tenant="gone"/.test(m), 'the tenant\'s series to leave both /metrics');
    } finally {
      await client?.dispose();
      await b.stop();
      await a.cleanup();
      await b.cleanup().catch(() => undefined);
    }
  });

  test('the first subscriber gets a value at once, not after an interval', async () => {
    // Ten-minute intervals: a value that waited for the next sample would time this test out.
    const slow = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '600000', USAGE_IDLE_SAMPLE_MS: '600000' } });
    // Its leader samples once at start, then every ten minutes: the provisioned tenant is new to it.
    const client = wsClient(slow.url, slow.adminKey);
    try {
      await slow.gql(PROVISION, { input: { slug: 'patient', displayName: 'p', maxConnections: 5 } });
      const sub = subscribeWs(client, USAGE, { slug: 'patient' }, pickUsage);
      const first = await until(() => sub.values[0], Boolean, 'the first value');
      assert.equal(first!.current, 0);
      sub.stop();
    } finally {
      await client.dispose();
      await slow.cleanup();
    }
  });
});
