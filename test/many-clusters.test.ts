// @test-slow: started first (scripts/run-tests.ts)
// @test-scope once (its clusters are private PostgreSQL 15 servers, registered as superuser, whatever the run's server)
// Issue 17: with more than one cluster, every per-cluster duty covers every cluster (usage,
// capacity, readiness, fleet operations), a cluster that goes down makes only its own tenants
// unavailable (readiness says which), and drainCluster empties a cluster so that removeCluster
// takes it away. Two private PostgreSQL 15 servers beside the test server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { localIdOf } from '../src/graphql/ids.js';
import { onDatabase, startPrivateCluster, type PrivateCluster } from './support/private-cluster.js';
import { until } from './support/subscriptions.js';
import { TestTemplates } from './support/templates.js';
import { connectAs, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

let t: TestTenantry;
let b: PrivateCluster;
let c: PrivateCluster;
let templates: TestTemplates;
const ids: Record<string, string> = {};
const envNames: string[] = [];
/** Run once a move's subscription exists, before its copy is watched. */
let onSubscribed: (() => Promise<void>) | null = null;

async function register(name: string, cluster: PrivateCluster): Promise<string> {
  const env = `TENANTRY_TEST_CLUSTER_${name.toUpperCase()}_${randomBytes(3).toString('hex')}`;
  process.env[env] = cluster.url;
  envNames.push(env);
  const r = await t.gql(`mutation($input: RegisterClusterInput!) { registerCluster(input: $input) { cluster { id name status } userErrors { code message } } }`, {
    input: { name, connectionUrlEnv: env, region: 'test' },
  });
  assert.deepEqual(r.data.registerCluster.userErrors, []);
  return r.data.registerCluster.cluster.id;
}

async function provisionOn(slug: string, clusterId: string, template = 'default'): Promise<string> {
  const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5, template, placement: { clusterId } } });
  assert.deepEqual(r.data.provisionTenant.userErrors, [], slug);
  return r.data.provisionTenant.connectionString;
}

const clusterOf = async (slug: string) => (await t.gql(`query($s: String!) { tenant(slug: $s) { cluster { id name } } }`, { s: slug })).data.tenant.cluster;
const healthChecks = async () => (await t.gql(`{ health { checks { name ok detail } } }`)).data.health.checks as { name: string; ok: boolean; detail: string }[];

before(async () => {
  templates = await TestTemplates.create();
  await templates.add('notes', '1.0.0', { description: 'notes 1.0.0', tables: ['notes'], extensions: { required: [] } }, 'CREATE TABLE notes (id int PRIMARY KEY);');
  await templates.add('notes', '1.1.0', { description: 'notes 1.1.0', tables: ['notes'], extensions: { required: [] } }, 'ALTER TABLE notes ADD COLUMN body text;');
  [b, c] = await Promise.all([startPrivateCluster({ version: 15 }), startPrivateCluster({ version: 15 })]);
  t = await startTestTenantry({
    env: { TEMPLATES_DIR: templates.dir, READINESS_INTERVAL_MS: '300', USAGE_SAMPLE_MS: '200' },
    failpoints: { 'move.after:SUBSCRIPTION': () => onSubscribed?.() },
  });
  ids.b = await register('bravo', b);
  ids.c = await register('charlie', c);
  ids.default = (await t.gql(`{ clusters { id name } }`)).data.clusters.find((x: { name: string }) => x.name === 'default').id;
});

after(async () => {
  await t.cleanup();
  await Promise.all([b.remove(), c.remove()]);
  await templates.remove();
  for (const env of envNames) delete process.env[env];
});

describe('every per-cluster duty covers every cluster', () => {
  test('usage, capacity and fleet upgrades reach tenants on each cluster', async () => {
    const onB = await provisionOn('mc-usage-b', ids.b!, 'notes');
    const onC = await provisionOn('mc-usage-c', ids.c!, 'notes');
    await provisionOn('mc-usage-d', ids.default!, 'notes');
    assert.equal((await clusterOf('mc-usage-b')).name, 'bravo');
    assert.equal((await clusterOf('mc-usage-c')).name, 'charlie');
    const sessions = [await connectAs(onB), await connectAs(onC)];
    try {
      // Each cluster's own sampler sees its tenant's session.
      await until(
        async () => (await t.gql(`{ b: tenant(slug: "mc-usage-b") { usage { current } } c: tenant(slug: "mc-usage-c") { usage { current } } }`)).data,
        (d: any) => d.b.usage?.current >= 1 && d.c.usage?.current >= 1,
        'usage of the tenants on both private clusters',
      );
      const clusters = (await t.gql(`{ clusters { name tenantCount allocatedConnections } }`)).data.clusters as { name: string; tenantCount: number; allocatedConnections: number }[];
      for (const name of ['bravo', 'charlie']) {
        const row = clusters.find((x) => x.name === name)!;
        assert.ok(row.tenantCount >= 1 && row.allocatedConnections >= 5, `${name}: ${JSON.stringify(row)}`);
      }
    } finally {
      await Promise.all(sessions.map((s) => s.end()));
    }
    const started = await t.gql(`mutation { upgradeAllTenantSchemas(input: { template: "notes", canarySize: 1 }) { operation { id } userErrors { code message } } }`);
    assert.deepEqual(started.data.upgradeAllTenantSchemas.userErrors, []);
    const op = await until(
      async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { status total results(first: 10) { tenantSlug status toVersion } } } }`, { id: started.data.upgradeAllTenantSchemas.operation.id })).data.node,
      (o: any) => o.status !== 'RUNNING' && o.status !== 'PENDING',
      'the upgrade to finish',
      60_000,
    );
    assert.equal(op.status, 'SUCCEEDED', JSON.stringify(op));
    assert.deepEqual(op.results.map((r: any) => `${r.tenantSlug} ${r.toVersion}`).sort(), ['mc-usage-b 1.1.0', 'mc-usage-c 1.1.0', 'mc-usage-d 1.1.0']);
  });

  test('a cluster that goes down makes only its own tenants unavailable, and readiness says which', async () => {
    await provisionOn('mc-down-b', ids.b!);
    await provisionOn('mc-down-c', ids.c!);
    await until(healthChecks, (checks) => checks.filter((x) => x.name.startsWith('cluster:')).every((x) => x.ok), 'every cluster healthy');
    await b.stop();
    try {
      const checks = await until(healthChecks, (cs) => cs.some((x) => x.name === 'cluster:bravo' && !x.ok), 'readiness to see bravo down');
      const bravo = checks.find((x) => x.name === 'cluster:bravo')!;
      assert.match(bravo.detail, /mc-down-b/, 'the tenants it takes with it are named');
      assert.doesNotMatch(bravo.detail, /mc-down-c/);
      assert.ok(checks.find((x) => x.name === 'cluster:charlie')!.ok);
      // The other cluster's tenant keeps working: a quota change applies there, and its usage reads.
      const q = await t.gql(`mutation { updateTenantQuota(input: { slug: "mc-down-c", maxConnections: 6 }) { quota { maxConnections } userErrors { code message } } }`);
      assert.deepEqual(q.data.updateTenantQuota.userErrors, []);
      assert.equal(q.data.updateTenantQuota.quota.maxConnections, 6);
      // A list of tenants across both answers: the one on the cluster that is down without a usage value, not an error for all.
      const list = await t.gql(`{ tenants(first: 50, filter: { search: "mc-down" }) { edges { node { slug usage { current } } } } }`);
      assert.equal(list.errors, undefined, JSON.stringify(list.errors));
      const bySlug = new Map(list.data.tenants.edges.map((e: any) => [e.node.slug, e.node.usage]));
      assert.notEqual(bySlug.get('mc-down-c'), null);
      // An inventory pass looks at the tenants it can reach and leaves the down cluster's for later.
      const findings = await t.app.parts.inventory.run();
      assert.ok(findings.some((f) => f.slug === 'mc-down-c'));
      assert.ok(!findings.some((f) => f.slug === 'mc-down-b'), 'a tenant on the cluster that is down is not looked into');
      assert.ok(t.app.parts.inventory.progress().skipped >= 1);
    } finally {
      await b.start();
    }
    await until(healthChecks, (cs) => cs.find((x) => x.name === 'cluster:bravo')?.ok === true, 'bravo healthy again', 30_000);
  });

  test('a source that goes down during a move\'s copy: the move stays RUNNING saying why, and is undone with that reason once the source is back', async () => {
    const url = await provisionOn('mc-source-down', ids.c!);
    const client = await connectAs(url);
    await client.query('CREATE TABLE items (id bigserial PRIMARY KEY, label text NOT NULL)');
    await client.query(`INSERT INTO items (label) SELECT 'item ' || g FROM generate_series(1, 100) g`);
    await client.end();
    const STATE = `query($id: ID!) { node(id: $id) { ... on TenantMove { status error } } }`;
    const state = async (id: string) => (await t.gql(STATE, { id })).data.node as { status: string; error: string | null };
    let moveId = '';
    onSubscribed = () => c.stop();
    try {
      const r = await t.gql(`mutation($input: MoveTenantInput!) { moveTenant(input: $input) { move { id } userErrors { code message } } }`, {
        input: { slug: 'mc-source-down', targetClusterId: ids.b, mode: 'ONLINE', retainSourceHours: 0 },
      });
      assert.deepEqual(r.data.moveTenant.userErrors, []);
      moveId = r.data.moveTenant.move.id;
      await t.app.parts.moves.settled(localIdOf(moveId, 'TenantMove')!);
      // Its copy could not reach the source, nor could the rollback (the move's slot is there).
      const stuck = await state(moveId);
      assert.equal(stuck.status, 'RUNNING');
      assert.match(stuck.error ?? '', /ECONNREFUSED|connect/);
      assert.match(stuck.error ?? '', /being rolled back: .*recovery tries again/);
    } finally {
      onSubscribed = null;
      await c.start();
    }
    await t.app.parts.moves.recover();
    const m = await until(() => state(moveId), (x) => x.status !== 'RUNNING', 'the move to be undone', 60_000);
    assert.equal(m.status, 'FAILED');
    assert.match(m.error ?? '', /ECONNREFUSED|connect/);
    assert.doesNotMatch(m.error ?? '', /being rolled back|server running the move stopped/);
    // The tenant is where it was, with its rows; nothing of the move is left on either server.
    assert.equal((await clusterOf('mc-source-down')).name, 'charlie');
    const again = await connectAs(url);
    assert.equal((await again.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 100);
    const db = (await again.query('SELECT current_database() AS d')).rows[0].d as string;
    await again.end();
    assert.deepEqual((await onDatabase(c.url, 'postgres', (x) => x.query(`SELECT slot_name FROM pg_replication_slots`))).rows, []);
    assert.deepEqual((await onDatabase(c.url, db, (x) => x.query(`SELECT pubname FROM pg_publication`))).rows, []);
    assert.deepEqual((await onDatabase(b.url, 'postgres', (x) => x.query(`SELECT datname FROM pg_database WHERE datname = $1`, [db]))).rows, []);
  });
});

test('drainCluster of 10 tenants ends with the cluster empty and removable', { timeout: 600_000 }, async () => {
  // Only bravo may take them: the control server's own cluster is cordoned for this test.
  const cordon = await t.gql(`mutation($id: ID!) { cordonCluster(input: { id: $id }) { cluster { status } userErrors { code message } } }`, { id: ids.default });
  assert.deepEqual(cordon.data.cordonCluster.userErrors, []);
  const slugs = Array.from({ length: 10 }, (_, i) => `mc-drain-${i}`);
  for (const slug of slugs) {
    const url = await provisionOn(slug, ids.c!);
    const client = await connectAs(url);
    await client.query('CREATE TABLE items (id bigserial PRIMARY KEY, label text NOT NULL)');
    await client.query(`INSERT INTO items (label) SELECT 'item ' || g FROM generate_series(1, 100) g`);
    await client.end();
  }
  const started = await t.gql(`mutation($id: ID!) { drainCluster(input: { id: $id, concurrency: 4, canarySize: 1 }) { operation { id kind total } userErrors { code message } } }`, { id: ids.c });
  assert.deepEqual(started.data.drainCluster.userErrors, []);
  assert.equal(started.data.drainCluster.operation.kind, 'DRAIN_CLUSTER');
  const charlie = async () => (await t.gql(`{ clusters { id name status tenantCount } }`)).data.clusters.find((x: { name: string }) => x.name === 'charlie');
  assert.equal((await charlie()).status, 'DRAINING', 'a cluster being drained takes no new tenants');
  const refused = await t.gql(PROVISION, { input: { slug: 'mc-drain-late', displayName: 'late', maxConnections: 5, placement: { clusterId: ids.c } } });
  assert.equal(refused.data.provisionTenant.userErrors[0]?.code, 'PLACEMENT_FAILED');

  // On failure, the moves themselves say where each one stands (step, error, progress).
  const moves = async () =>
    JSON.stringify(
      (await t.app.parts.db.tenantMove.findMany({ where: { tenant: { slug: { startsWith: 'mc-' } } }, include: { tenant: { select: { slug: true } } }, orderBy: { createdAt: 'asc' } })).map(
        (m) => ({ slug: m.tenant.slug, status: m.status, step: m.step, error: m.error, progress: m.progress }),
      ),
    );
  const op = await until(
    async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { status done failed error results(first: 20) { tenantSlug status message } } } }`, { id: started.data.drainCluster.operation.id })).data.node,
    (o: any) => o.status !== 'RUNNING' && o.status !== 'PENDING',
    'the drain to finish',
    540_000,
  ).catch(async (err: Error) => assert.fail(`${err.message}\nmoves: ${await moves()}`));
  if (op.status !== 'SUCCEEDED') assert.fail(`the drain ended ${op.status}: ${JSON.stringify(op)}\nmoves: ${await moves()}`);
  assert.equal((await charlie()).tenantCount, 0);
  for (const slug of slugs) {
    assert.equal((await clusterOf(slug)).name, 'bravo', slug);
  }
  // The data came along, and a sequence-backed insert works on the new server.
  const strings = await t.gql(`mutation { rotateTenantCredentials(input: { slug: "mc-drain-3" }) { connectionString userErrors { code message } } }`);
  assert.deepEqual(strings.data.rotateTenantCredentials.userErrors, []);
  const moved = await connectAs(strings.data.rotateTenantCredentials.connectionString);
  try {
    assert.equal((await moved.query('SELECT inet_server_port() AS port')).rows[0].port, b.port);
    assert.equal((await moved.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 100);
    const { rows } = await moved.query(`INSERT INTO items (label) VALUES ('after the move') RETURNING id`);
    assert.equal(Number(rows[0].id), 101);
  } finally {
    await moved.end();
  }
  const removed = await t.gql(`mutation($id: ID!) { removeCluster(input: { id: $id }) { name userErrors { code message } } }`, { id: ids.c });
  assert.deepEqual(removed.data.removeCluster.userErrors, []);
  assert.equal(await charlie(), undefined);
});
