// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { subscribeWs, until, wsClient } from './support/subscriptions.js';
import { connectAs, PROVISION, startTestTenantry, testServerUrl, type TestTenantry, controlPlaneUrl } from './support/test-tenantry.js';

// Issue 9, item 5: a sampling leader that hangs (SIGSTOP) is replaced once its lease
// expires, and publishes nothing once it wakes up. Two real server processes.

interface Replica {
  child: ChildProcess;
  url: string;
  replica: string;
  output: string[];
}

const LEASE_MS = 1500;
let setup: TestTenantry;
let control: pg.Client;
const replicas: Replica[] = [];
let connectionString: string;

async function startReplica(): Promise<Replica> {
  const env = {
    DATABASE_URL: controlPlaneUrl(),
    CONTROL_DATABASE: setup.controlDatabase,
    TENANT_DB_PREFIX: setup.prefix,
    ADMIN_API_KEY: setup.adminKey,
    PORT: '0',
    QUOTA_MIN: '2',
    OVERCOMMIT_FACTOR: '50',
    POOLER: 'none',
    RECONCILE_INTERVAL_MS: '0',
    INVENTORY_INTERVAL_MS: '0',
    USAGE_SAMPLE_MS: '200',
    USAGE_IDLE_SAMPLE_MS: '1000',
    USAGE_LEASE_MS: String(LEASE_MS),
    LOG_LEVEL: 'info',
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/replica-process.ts'], {
    env: { ...process.env, REPLICA_ENV: JSON.stringify(env) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stderr!.on('data', (d) => output.push(String(d)));
  const lines = createInterface({ input: child.stdout! });
  const first = await Promise.race([
    new Promise<{ url: string; replica: string }>((resolve) =>
      lines.on('line', (line) => {
        output.push(line);
        if (line.startsWith('REPLICA ')) resolve(JSON.parse(line.slice('REPLICA '.length)));
      }),
    ),
    once(child, 'exit').then(() => {
      throw new Error(`replica exited: ${output.join('\n')}`);
    }),
  ]);
  const replica = { child, output, ...first };
  replicas.push(replica);
  return replica;
}

const lease = async () => (await control.query<{ holder: string; epoch: number }>('SELECT holder, epoch FROM usage_leases')).rows[0];
const metric = async (r: Replica, name: string) => {
  const text = await (await fetch(`${r.url}/metrics`)).text();
  return Number(new RegExp(`^${name}\\{cluster="default"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
};

before(async () => {
  setup = await startTestTenantry();
  const r = await setup.gql(PROVISION, { input: { slug: 'hung', displayName: 'hung', maxConnections: 5 } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  connectionString = r.data.provisionTenant.connectionString;
  await setup.stop();
  control = new pg.Client({ connectionString: withDatabase(testServerUrl(), setup.controlDatabase) });
  await control.connect();
  await startReplica();
  await startReplica();
});

after(async () => {
  for (const r of replicas) {
    r.child.kill('SIGCONT');
    r.child.kill('SIGTERM');
  }
  await Promise.all(replicas.map((r) => (r.child.exitCode === null ? once(r.child, 'exit') : undefined)));
  await control?.end();
  await setup.cleanup();
});

test('a leader frozen with SIGSTOP loses its lease to the other replica, and publishes nothing once it wakes', async () => {
  const held = await until(lease, (l) => Boolean(l && replicas.some((r) => r.replica === l.holder)), 'a leader');
  const leader = replicas.find((r) => r.replica === held!.holder)!;
  const follower = replicas.find((r) => r !== leader)!;
  await until(() => metric(leader, 'tenantry_usage_samples_total'), (n) => n >= 2, 'the leader to sample');
  assert.equal(await metric(follower, 'tenantry_usage_samples_total'), 0, 'only the leader samples');

  const client = wsClient(follower.url, setup.adminKey);
  const sub = subscribeWs(client, `subscription { connectionUsage(tenantSlug: "hung") { current } }`, {}, (d) => d.connectionUsage);
  let session: pg.Client | undefined;
  try {
    await until(() => sub.values.length, (n) => n > 0, 'a first value on the follower');
    const before = await metric(leader, 'tenantry_usage_samples_total');
    leader.child.kill('SIGSTOP');

    const taken = await until(lease, (l) => l?.holder === follower.replica, 'the follower to take the lease', 30_000);
    assert.ok(taken!.epoch > held!.epoch, `a new epoch (${held!.epoch} → ${taken!.epoch})`);
    await until(() => metric(follower, 'tenantry_usage_samples_total'), (n) => n >= 2, 'the new leader to sample');
    assert.equal(await metric(follower, 'tenantry_usage_sampler_leader'), 1);
    // Its subscriber now hears the new leader's samples (the in-process bus: only its own).
    session = await connectAs(connectionString);
    await until(() => sub.values.at(-1)?.current, (c) => c === 1, 'the new leader\'s sample');

    leader.child.kill('SIGCONT');
    await until(() => metric(leader, 'tenantry_usage_sampler_leader'), (n) => n === 0, 'the old leader to step down');
    // Its log line comes over a pipe, its metric over HTTP: either may arrive first.
    await until(() => leader.output.some((l) => /no longer sampling usage/.test(l)), Boolean, 'the old leader to say it lost the lease');
    const woke = await metric(leader, 'tenantry_usage_samples_total');
    // At most the sample that was under way when it froze; none after it woke.
    assert.ok(woke - before <= 1, `${woke - before} samples completed by the frozen leader`);
    const followerNow = await metric(follower, 'tenantry_usage_samples_total');
    await until(() => metric(follower, 'tenantry_usage_samples_total'), (n) => n >= followerNow + 5, '5 more samples by the new leader');
    assert.equal(await metric(leader, 'tenantry_usage_samples_total'), woke, 'the old leader published nothing since');
    assert.equal((await lease())!.holder, follower.replica);
    assert.deepEqual(sub.errors, []);
  } finally {
    sub.stop();
    await client.dispose();
    await session?.end();
  }
});
