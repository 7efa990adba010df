// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { subscribeSse, subscribeWs, until, wsClient } from './support/subscriptions.js';
import { controlPlaneUrl, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

// Issue 14, item 11: a replica that stalls (SIGSTOP) while the sampling leader goes on
// finds every sample published meanwhile waiting in its Redis connection, and gets them all
// at once when it runs again. That backlog is the server's, not its subscribers': none of
// them is dropped as too slow (1013, SUBSCRIBER_TOO_SLOW), and they keep receiving.

const redisReachable = await new Promise<boolean>((resolve) => {
  const socket = connect({ host: '127.0.0.1', port: 6379 });
  socket.once('connect', () => {
    socket.destroy();
    resolve(true);
  });
  socket.once('error', () => resolve(false));
});
const noRedis = redisReachable || process.env.CI === 'true' ? false : 'Redis is not running on 127.0.0.1:6379; with CI=true this fails';

const QUEUE = 4;
const settings = { REDIS_URL: 'redis://127.0.0.1:6379', USAGE_SAMPLE_MS: '200', USAGE_IDLE_SAMPLE_MS: '1000', USAGE_HEARTBEAT_MS: '200', USAGE_SUBSCRIBER_QUEUE: String(QUEUE) };
let leader: TestTenantry | undefined;
let replica: { child: ChildProcess; url: string; output: string[] } | undefined;

/** The second replica, in a process of its own so that it can be stopped. */
async function startReplica(t: TestTenantry): Promise<NonNullable<typeof replica>> {
  const env = {
    DATABASE_URL: controlPlaneUrl(),
    CONTROL_DATABASE: t.controlDatabase,
    TENANT_DB_PREFIX: t.prefix,
    ADMIN_API_KEY: t.adminKey,
    PORT: '0',
    QUOTA_MIN: '2',
    OVERCOMMIT_FACTOR: '50',
    POOLER: 'none',
    RECONCILE_INTERVAL_MS: '0',
    INVENTORY_INTERVAL_MS: '0',
    LOG_LEVEL: 'info',
    ...settings,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/replica-process.ts'], { env: { ...process.env, REPLICA_ENV: JSON.stringify(env) }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stderr!.on('data', (d) => output.push(String(d)));
  const lines = createInterface({ input: child.stdout! });
  const { url } = await Promise.race([
    new Promise<{ url: string }>((resolve) =>
      lines.on('line', (line) => {
        output.push(line);
        if (line.startsWith('REPLICA ')) resolve(JSON.parse(line.slice('REPLICA '.length)));
      }),
    ),
    once(child, 'exit').then(() => {
      throw new Error(`replica exited: ${output.join('\n')}`);
    }),
  ]);
  return { child, url, output };
}

before(async () => {
  if (noRedis) return;
  leader = await startTestTenantry({ env: settings });
  const r = await leader.gql(PROVISION, { input: { slug: 'steady', displayName: 'steady', maxConnections: 5 } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  // The leader is the replica that keeps running: it holds the lease before the other starts.
  await until(() => leader!.app.parts.usage.sampler(leader!.app.parts.clusters.defaultCluster.id)!.stats.leader, Boolean, 'the first replica to lead');
  replica = await startReplica(leader);
});

after(async () => {
  if (replica && replica.child.exitCode === null) {
    replica.child.kill('SIGCONT');
    replica.child.kill('SIGTERM');
    await once(replica.child, 'exit');
  }
  await leader?.cleanup();
});

test('a replica stopped for 6 s keeps its subscribers: none is closed with 1013 or dropped as too slow, and they keep receiving', { skip: noRedis }, async () => {
  const sampler = leader!.app.parts.usage.sampler(leader!.app.parts.clusters.defaultCluster.id)!;
  const { child, url } = replica!;
  // A watcher on the leader keeps it sampling at full rate while the other replica cannot ask.
  const onLeader = wsClient(leader!.url, leader!.adminKey);
  let closedWith = 0;
  const onReplica = wsClient(url, leader!.adminKey, (code) => (closedWith = code));
  const USAGE = `subscription { connectionUsage(tenantSlug: "steady") { sampledAt } }`;
  const watching = subscribeWs(onLeader, USAGE, {}, (d) => d.connectionUsage);
  const ws = subscribeWs(onReplica, USAGE, {}, (d) => d.connectionUsage);
  const batches = subscribeWs(onReplica, `subscription { connectionUsageBatch { sampledAt } }`, {}, (d) => d.connectionUsageBatch);
  const sse = subscribeSse(url, leader!.adminKey, USAGE, {}, (d) => d.connectionUsage);
  try {
    for (const sub of [watching, ws, batches, sse]) await until(() => sub.values.length, (n) => n > 1, 'values flowing', 30_000);

    const published = sampler.stats.batches;
    child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 6000));
    child.kill('SIGCONT');
    const meanwhile = sampler.stats.batches - published;
    assert.ok(meanwhile > 2 * QUEUE, `the leader published ${meanwhile} samples while the replica was stopped: more than its subscribers' queues hold`);

    const heard = { ws: ws.values.length, batches: batches.values.length, sse: sse.values.length };
    const more = () => Math.min(ws.values.length - heard.ws, batches.values.length - heard.batches, sse.values.length - heard.sse);
    const ended = () => closedWith !== 0 || [ws, batches, sse].some((s) => s.errors.length > 0);
    await until(() => ended() || more() >= 10, Boolean, '10 more values on every subscription of the woken replica', 30_000);
    assert.equal(closedWith, 0, 'the socket stays open');
    assert.deepEqual([ws.errors, batches.errors, sse.errors].map((errors) => errors.map((e: any) => e?.extensions?.code ?? e?.code ?? String(e))), [[], [], []]);
    assert.equal([ws, batches, sse].some((s) => s.done), false);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.doesNotMatch(metrics, /^tenantry_subscriptions_ended_total\{reason="SUBSCRIBER_TOO_SLOW"\} [1-9]/m);
  } finally {
    for (const s of [watching, ws, batches, sse]) s.stop();
    await onLeader.dispose();
    await onReplica.dispose();
  }
});
