// @test-scope once: Redis going down and coming back: the same on any server and with any privileges.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { startPrivateRedis, type PrivateRedis } from './support/private-redis.js';
import { subscribeSse, subscribeWs, until, wsClient, type Collected } from './support/subscriptions.js';
import { connectAs, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

// Issue 14, item 3: with REDIS_URL set and Redis killed, a sampling leader's own subscribers
// kept hearing nothing, /health/ready said all was well, and only a log line told. Two
// replicas on a redis-server of this file's own, killed and started again on the same port.

const USAGE = `subscription($slug: String!) { connectionUsage(tenantSlug: $slug) { id current degraded sampledAt } }`;
const PLAIN = `subscription($slug: String!) { connectionUsage(tenantSlug: $slug) { current } }`;
const BATCH = `subscription { connectionUsageBatch { degraded usage { tenantSlug current degraded } } }`;
type Usage = { id: string; current: number; degraded: boolean; sampledAt: string };
type Batch = { degraded: boolean; usage: { tenantSlug: string; current: number; degraded: boolean }[] };

let redis: PrivateRedis;
let a: TestTenantry;
let b: TestTenantry;
let connectionString: string;
const sessions: pg.Client[] = [];

before(async () => {
  redis = await startPrivateRedis();
  const env = { REDIS_URL: redis.url, USAGE_SAMPLE_MS: '200', USAGE_IDLE_SAMPLE_MS: '1000', USAGE_HEARTBEAT_MS: '2000' };
  a = await startTestTenantry({ env });
  b = await startTestTenantry({ env, shareWith: a });
  const r = await a.gql(PROVISION, { input: { slug: 'outage', displayName: 'outage', maxConnections: 5 } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  connectionString = r.data.provisionTenant.connectionString;
});
after(async () => {
  await Promise.all(sessions.map((s) => s.end().catch(() => undefined)));
  await b?.stop();
  await a?.cleanup();
  await redis?.kill();
});

const sampler = (t: TestTenantry) => t.app.parts.usage.sampler(t.app.parts.clusters.defaultCluster.id)!;
const ready = async (t: TestTenantry) => (await (await fetch(`${t.url}/health/ready`)).json()) as { ready: boolean; degraded: boolean; checks: { name: string; ok: boolean; detail: string }[] };
const busCheck = async (t: TestTenantry) => (await ready(t)).checks.find((c) => c.name === 'event-bus');
const metric = async (t: TestTenantry, line: RegExp) => line.test(await (await fetch(`${t.url}/metrics`)).text());
const last = <T>(c: Collected<T>) => c.values.at(-1);

test('Redis killed: readiness and /metrics say the bus is down, the leader\'s subscribers keep receiving, the others get degraded heartbeats; back: the current values follow', async () => {
  await until(() => sampler(a).stats.leader || sampler(b).stats.leader, Boolean, 'a sampling leader');
  const [leader, follower] = sampler(a).stats.leader ? [a, b] : [b, a];
  for (const t of [a, b]) await until(() => busCheck(t), (c) => c?.ok === true, 'the event bus to be up');

  const leaderClient = wsClient(leader.url, leader.adminKey);
  const followerClient = wsClient(follower.url, follower.adminKey);
  const onLeader = subscribeWs(leaderClient, PLAIN, { slug: 'outage' }, (d) => d.connectionUsage as { current: number });
  const onFollower = subscribeWs(followerClient, USAGE, { slug: 'outage' }, (d) => d.connectionUsage as Usage);
  const sseOnFollower = subscribeSse(follower.url, follower.adminKey, USAGE, { slug: 'outage' }, (d) => d.connectionUsage as Usage);
  const batchOnFollower = subscribeWs(followerClient, BATCH, {}, (d) => d.connectionUsageBatch as Batch);
  const clusterOnFollower = subscribeWs(followerClient, `subscription($id: ID!) { clusterUsage(clusterId: $id) { tenantConnections degraded } }`, { id: follower.app.parts.clusters.defaultCluster.id }, (d) => d.clusterUsage as { tenantConnections: number; degraded: boolean });
  try {
    for (const sub of [onLeader, onFollower, sseOnFollower, clusterOnFollower]) await until(() => sub.values.length, (n) => n > 0, 'a first value');
    assert.equal(last(onFollower)!.degraded, false);

    await redis.kill();
    // Both replicas know at once: readiness (degraded, still ready: every replica shares the one Redis) and /metrics.
    for (const t of [leader, follower]) {
      const check = await until(() => busCheck(t), (c) => c?.ok === false, 'readiness to report the event bus down');
      assert.match(check!.detail, /^Redis unreachable since .*: live usage sampled by other replicas is not arriving/);
      const report = await ready(t);
      assert.deepEqual([report.ready, report.degraded], [true, true]);
      await until(() => metric(t, /^tenantry_event_bus_up 0$/m), Boolean, 'tenantry_event_bus_up 0');
    }

    // The follower's subscribers are told: a degraded heartbeat at once, then every USAGE_HEARTBEAT_MS.
    for (const sub of [onFollower, sseOnFollower]) {
      await until(() => sub.values.filter((v) => v.degraded).length, (n) => n >= 2, 'two degraded heartbeats on the follower');
      const heartbeat = sub.values.find((v) => v.degraded)!;
      assert.equal(heartbeat.current, 0, 'the last value heard, re-sent');
      assert.equal(heartbeat.id, sub.values[0]!.id);
    }
    await until(() => batchOnFollower.values.filter((v) => v.degraded).length, (n) => n >= 2, 'degraded batch heartbeats');
    await until(() => clusterOnFollower.values.filter((v) => v.degraded).length, (n) => n >= 2, 'degraded cluster heartbeats');

    // The leader samples on, and its own subscriber hears it without Redis.
    const session = await connectAs(connectionString);
    sessions.push(session);
    await until(() => last(onLeader)?.current, (c) => c === 1, 'the leader\'s subscriber to see the new session during the outage');
    // Tenant.usage on the follower reads live while it cannot hear the leader (its last value heard says 0).
    const usage = await follower.gql(`{ tenant(slug: "outage") { usage { current degraded } } }`);
    assert.deepEqual(usage.data.tenant.usage, { current: 1, degraded: false });
    assert.ok(onFollower.values.every((v) => v.current === 0), 'nothing reached the follower\'s stream but heartbeats of the old value');

    await redis.start();
    for (const t of [leader, follower]) {
      await until(() => busCheck(t), (c) => c?.ok === true, 'readiness to report the event bus back', 30_000);
      assert.equal((await ready(t)).degraded, false);
      await until(() => metric(t, /^tenantry_event_bus_up 1$/m), Boolean, 'tenantry_event_bus_up 1');
    }
    // The change made during the outage reaches the follower's subscribers (the leader publishes every tenant again).
    for (const sub of [onFollower, sseOnFollower]) {
      await until(() => last(sub), (v) => v?.current === 1 && v.degraded === false, 'the current value on the follower after the outage');
    }
    await until(() => last(batchOnFollower), (v) => v?.degraded === false && v.usage.some((u) => u.tenantSlug === 'outage' && u.current === 1), 'the batch stream to resume');
    assert.ok(sampler(leader).stats.resyncs >= 1, 'the leader published every tenant again');
    assert.ok(await metric(leader, /^tenantry_event_bus_messages_dropped_total\{kind="usage:batch"\} [1-9]\d*$/m), 'the samples other replicas missed are counted');
    await until(() => clusterOnFollower.values.at(-1), (v) => v?.degraded === false && v.tenantConnections === 1, 'the cluster\'s current value on the follower');
    for (const sub of [onLeader, onFollower, sseOnFollower, batchOnFollower, clusterOnFollower]) assert.deepEqual(sub.errors, []);
  } finally {
    for (const sub of [onLeader, onFollower, sseOnFollower, batchOnFollower, clusterOnFollower]) sub.stop();
    await leaderClient.dispose();
    await followerClient.dispose();
  }
});
