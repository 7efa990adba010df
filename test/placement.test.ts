// @test-scope once (the clusters it registers are private PostgreSQL servers, as superuser, whatever the run's server; provisioning under least privilege is covered by the server-scope files)
// Placement (issue 17): provisionTenant places a new tenant on the cluster asked for, or among the
// ACTIVE clusters that match and have room, by PLACEMENT_POLICY: spread lands 20 tenants 10/10
// on two equal empty clusters, pack fills one first (up to its maxTenants), labels land 100 % on
// the labelled cluster, a cordoned cluster gets none, and a refusal names every cluster and why.
// Two private PostgreSQL servers (15 with TEST_DATABASE_URL, else 18) play the clusters.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startPrivateCluster, type PrivateCluster } from './support/private-cluster.js';
import { startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

const REGISTER = `mutation R($input: RegisterClusterInput!) { registerCluster(input: $input) { cluster { id name } userErrors { code message } } }`;
const UPDATE = `mutation U($input: UpdateClusterInput!) { updateCluster(input: $input) { cluster { id maxTenants } userErrors { code message } } }`;
const CORDON = `mutation C($input: CordonClusterInput!) { cordonCluster(input: $input) { cluster { status } userErrors { code message } } }`;
const PROVISION = `mutation P($input: ProvisionTenantInput!) {
  provisionTenant(input: $input) {
    tenant { slug status cluster { id name } placement { policy askedClusterId askedRegion askedLabels placedOnClusterId } }
    connectionString
    userErrors { code field message }
  }
}`;

const version = process.env.TEST_DATABASE_URL ? 15 : 18;
let t: TestTenantry;
let pack: TestTenantry;
let servers: PrivateCluster[] = [];
/** Cluster global ids by name. */
const ids: Record<string, string> = {};

before(async () => {
  servers = await Promise.all([startPrivateCluster({ version }), startPrivateCluster({ version })]);
  // Quotas of 2: room on either private cluster is thousands of connections (OVERCOMMIT_FACTOR 50 in tests).
  t = await startTestTenantry({ env: { DEFAULT_MAX_CONNECTIONS: '2', PLACEMENT_POLICY: 'spread' } });
  pack = await startTestTenantry({ shareWith: t, env: { DEFAULT_MAX_CONNECTIONS: '2', PLACEMENT_POLICY: 'pack' } });
  for (const [name, server, labels] of [['alpha', servers[0]!, ['ssd']], ['beta', servers[1]!, ['ssd', 'gold']]] as const) {
    const r = await t.gql(REGISTER, { input: { name, connectionUrl: server.url, region: 'eu', labels } });
    assert.deepEqual(r.data.registerCluster.userErrors, []);
    ids[name] = r.data.registerCluster.cluster.id;
  }
  const clusters = (await t.gql('{ clusters { id name } }')).data.clusters as { id: string; name: string }[];
  ids.default = clusters.find((c) => c.name === 'default')!.id;
});

after(async () => {
  await pack?.stop();
  await t?.cleanup();
  await Promise.all(servers.map((s) => s.remove()));
});

async function provision(on: TestTenantry, slug: string, extra: Record<string, unknown> = {}) {
  const r = await on.gql(PROVISION, { input: { slug, displayName: slug, ...extra } });
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  return r.data.provisionTenant as {
    tenant: { slug: string; status: string; cluster: { id: string; name: string }; placement: { policy: string; askedClusterId: string | null; askedRegion: string | null; askedLabels: string[]; placedOnClusterId: string } } | null;
    connectionString: string | null;
    userErrors: { code: string; field: string | null; message: string }[];
  };
}

async function placed(on: TestTenantry, slugs: string[], extra: Record<string, unknown> = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const slug of slugs) {
    const p = await provision(on, slug, extra);
    assert.deepEqual(p.userErrors, [], slug);
    const name = p.tenant!.cluster.name;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

async function cordon(name: string, cordoned: boolean) {
  const r = await t.gql(CORDON, { input: { id: ids[name], cordoned } });
  assert.deepEqual(r.data.cordonCluster.userErrors, []);
}

async function deprovisionAll() {
  const tenants = await t.app.parts.db.tenant.findMany({ where: { status: { not: 'DEPROVISIONED' } }, select: { slug: true } });
  for (const { slug } of tenants) {
    const d = await t.gql(`mutation D($input: DeprovisionTenantInput!) { deprovisionTenant(input: $input) { userErrors { code message } } }`, { input: { slug, confirm: slug } });
    assert.deepEqual(d.data.deprovisionTenant.userErrors, [], slug);
  }
}

test('spread: 20 tenants over two equal empty clusters land 10/10; the cordoned control server gets none', async () => {
  await cordon('default', true);
  try {
    const counts = await placed(t, Array.from({ length: 20 }, (_, i) => `spread-${i}`));
    assert.equal(counts.default, undefined, 'the cordoned cluster got none');
    assert.ok(Math.abs((counts.alpha ?? 0) - 10) <= 1 && Math.abs((counts.beta ?? 0) - 10) <= 1, JSON.stringify(counts));
    // The connection string leads to the tenant's own server.
    const fresh = await provision(t, 'spread-port');
    const server = servers[fresh.tenant!.cluster.name === 'alpha' ? 0 : 1]!;
    assert.match(fresh.connectionString!, new RegExp(`@127\\.0\\.0\\.1:${server.port}/`));
  } finally {
    await cordon('default', false);
  }
  // What was asked and chosen is recorded.
  const again = await provision(t, 'spread-0');
  assert.deepEqual(again.userErrors, []);
  const p = again.tenant!.placement;
  assert.deepEqual({ ...p, placedOnClusterId: undefined }, { policy: 'SPREAD', askedClusterId: null, askedRegion: null, askedLabels: [], placedOnClusterId: undefined });
  assert.equal(p.placedOnClusterId, again.tenant!.cluster.id);
  const row = await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'spread-1' } });
  assert.deepEqual(Object.keys(row.placement as object).sort(), ['asked', 'clusterId', 'policy']);
  await deprovisionAll();
});

test('an existing tenant keeps its cluster, whatever placement would choose now', async () => {
  const first = await provision(t, 'keeper', { placement: { clusterId: ids.beta } });
  assert.equal(first.tenant!.cluster.name, 'beta');
  assert.equal(first.tenant!.placement.askedClusterId, ids.beta);
  await cordon('beta', true);
  try {
    const again = await provision(t, 'keeper');
    assert.deepEqual(again.userErrors, []);
    assert.equal(again.tenant!.cluster.name, 'beta');
    const other = await provision(t, 'keeper', { placement: { clusterId: ids.alpha } });
    assert.deepEqual(other.userErrors.map((e) => e.code), ['SLUG_TAKEN']);
  } finally {
    await cordon('beta', false);
  }
  await deprovisionAll();
});

test('labels: every tenant asking for "gold" lands on the one cluster that has it', async () => {
  const counts = await placed(t, ['gold-1', 'gold-2', 'gold-3', 'gold-4', 'gold-5'], { placement: { labels: ['gold', 'ssd'] } });
  assert.deepEqual(counts, { beta: 5 });
  const p = await provision(t, 'gold-1');
  assert.deepEqual(p.tenant!.placement.askedLabels, ['gold', 'ssd']);
  const region = await placed(t, ['eu-1', 'eu-2'], { placement: { region: 'eu', labels: ['ssd'] } });
  assert.equal(region.default, undefined, 'the default cluster has no region');
  await deprovisionAll();
});

test('pack fills one cluster first, up to its maxTenants; a cordoned cluster gets none', async () => {
  await cordon('default', true);
  try {
    assert.deepEqual(await placed(pack, ['pack-1', 'pack-2', 'pack-3', 'pack-4']), { alpha: 4 });
    const capped = await t.gql(UPDATE, { input: { id: ids.alpha, maxTenants: 4 } });
    assert.deepEqual(capped.data.updateCluster.userErrors, []);
    assert.deepEqual(await placed(pack, ['pack-5', 'pack-6']), { beta: 2 });
    const p = await provision(pack, 'pack-5');
    assert.equal(p.tenant!.placement.policy, 'PACK');

    // Spread too skips a cordoned cluster.
    await cordon('alpha', true);
    assert.deepEqual(await placed(t, ['only-beta-1', 'only-beta-2']), { beta: 2 });
    await cordon('alpha', false);

    // Nothing fits: every cluster is named with why.
    await t.gql(UPDATE, { input: { id: ids.beta, maxTenants: 4 } });
    const refused = await provision(t, 'no-room');
    assert.equal(refused.tenant, null);
    assert.deepEqual(refused.userErrors.map((e) => [e.code, e.field]), [['PLACEMENT_FAILED', 'placement']]);
    const message = refused.userErrors[0]!.message;
    assert.match(message, /no cluster can take no-room \(2 connections; asked any ACTIVE cluster \(PLACEMENT_POLICY spread\)\)/);
    assert.match(message, /alpha: no room \(room \d+ connections, 0 of maxTenants left\)/);
    assert.match(message, /beta: no room \(room \d+ connections, 0 of maxTenants left\)/);
    assert.match(message, /default: CORDONED/);
    assert.equal(await t.app.parts.db.tenant.count({ where: { slug: 'no-room' } }), 0, 'nothing was recorded');

    const nowhere = await provision(t, 'nowhere', { placement: { labels: ['platinum'] } });
    assert.deepEqual(nowhere.userErrors.map((e) => e.code), ['PLACEMENT_FAILED']);
    assert.match(nowhere.userErrors[0]!.message, /alpha: lacks label platinum; beta: lacks label platinum; default: CORDONED/);
  } finally {
    await cordon('default', false);
    await t.gql(UPDATE, { input: { id: ids.alpha, maxTenants: null } });
    await t.gql(UPDATE, { input: { id: ids.beta, maxTenants: null } });
  }
  await deprovisionAll();
});

test('a placement naming no cluster, or a cluster and labels at once, is refused', async () => {
  const unknown = await provision(t, 'lost', { placement: { clusterId: '00000000-0000-4000-8000-000000000000' } });
  assert.deepEqual(unknown.userErrors.map((e) => [e.code, e.field]), [['NOT_FOUND', 'placement.clusterId']]);
  const both = await provision(t, 'both', { placement: { clusterId: ids.alpha, labels: ['ssd'] } });
  assert.deepEqual(both.userErrors.map((e) => [e.code, e.field]), [['INVALID_INPUT', 'placement']]);
});

test('two provisionings racing for the last tenant slot of a cluster: one gets it, the other is refused', async () => {
  const capped = await t.gql(UPDATE, { input: { id: ids.alpha, maxTenants: 1 } });
  assert.deepEqual(capped.data.updateCluster.userErrors, []);
  try {
    const [a, b] = await Promise.all(['race-a', 'race-b'].map((slug) => provision(t, slug, { placement: { clusterId: ids.alpha } })));
    const outcomes = [a!, b!].map((r) => (r.userErrors[0]?.code ?? r.tenant!.status)).sort();
    assert.deepEqual(outcomes, ['ACTIVE', 'CLUSTER_CAPACITY_EXCEEDED']);
    const refused = [a!, b!].find((r) => r.userErrors.length)!;
    assert.match(refused.userErrors[0]!.message, /cluster alpha holds 1 tenants, its maxTenants 1/);
    assert.equal(await t.app.parts.db.tenant.count({ where: { clusterId: decodeGlobalID(ids.alpha!).id, status: { not: 'DEPROVISIONED' } } }), 1);
  } finally {
    await t.gql(UPDATE, { input: { id: ids.alpha, maxTenants: null } });
  }
  await deprovisionAll();
});

test('a cluster that does not answer is skipped, and named in a refusal', async () => {
  await servers[0]!.stop();
  try {
    await cordon('default', true);
    assert.deepEqual(await placed(t, ['while-alpha-down']), { beta: 1 });
    await cordon('beta', true);
    const refused = await provision(t, 'nowhere-to-go');
    assert.deepEqual(refused.userErrors.map((e) => e.code), ['PLACEMENT_FAILED']);
    assert.match(refused.userErrors[0]!.message, /alpha: unreachable \(.+\); beta: CORDONED; default: CORDONED/);
    const listed = await t.gql('{ clusters { name reachable unreachableReason } }');
    const alpha = listed.data.clusters.find((c: { name: string }) => c.name === 'alpha');
    assert.equal(alpha.reachable, false);
    assert.ok(alpha.unreachableReason);
  } finally {
    await cordon('beta', false);
    await cordon('default', false);
    await servers[0]!.start();
  }
  await deprovisionAll();
});
