// @test-scope once (the clusters it registers are private PostgreSQL servers, as superuser, whatever the run's server; provisioning under least privilege is covered by the server-scope files)
// The cluster registry (issue 17, "Registry"): registerCluster by an environment variable and by
// a sealed URL, on private PostgreSQL 15 and 18 servers; what is refused (unreachable, wrong
// password, underprivileged, the same server twice, a duplicate name) stores nothing; the API
// never returns a URL; updateCluster keeps a cluster on its server; cordon and uncordon;
// removeCluster refused while a tenant remains and for the control database's server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { decodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { freePort } from './support/free-port.js';
import { startPrivateCluster, type PrivateCluster } from './support/private-cluster.js';
import { DEPROVISION, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

const CLUSTER_FIELDS = `id name status region labels maxTenants holdsControlDatabase connectionUrlSource connectionUrlEnv
  reachable unreachableReason serverVersion walLevel replicationSlotsFree maxWalSenders canTakeMoves tenantCount allocatedConnections capacity roomConnections`;
const REGISTER = `mutation R($input: RegisterClusterInput!) {
  registerCluster(input: $input) { cluster { ${CLUSTER_FIELDS} } warnings userErrors { code field message } }
}`;
const UPDATE = `mutation U($input: UpdateClusterInput!) {
  updateCluster(input: $input) { cluster { ${CLUSTER_FIELDS} } warnings userErrors { code field message } }
}`;
const CORDON = `mutation C($input: CordonClusterInput!) { cordonCluster(input: $input) { cluster { id status } userErrors { code field message } } }`;
const REMOVE = `mutation X($input: RemoveClusterInput!) { removeCluster(input: $input) { removedClusterId name userErrors { code field message } } }`;
const CLUSTERS = `{ clusters { ${CLUSTER_FIELDS} } }`;

let t: TestTenantry;
let c15: PrivateCluster;
let c18: PrivateCluster;
const envName = `TENANTRY_TEST_CLUSTER_${randomBytes(4).toString('hex').toUpperCase()}`;
const passwords: string[] = [];
const ids: Record<string, string> = {};

before(async () => {
  [c15, c18] = await Promise.all([startPrivateCluster({ version: 15 }), startPrivateCluster({ version: 18 })]);
  for (const c of [c15, c18]) passwords.push(new URL(c.url).password);
  process.env[envName] = c15.url;
  t = await startTestTenantry({ env: { DEFAULT_MAX_CONNECTIONS: '5' } });
});

after(async () => {
  await t?.cleanup();
  delete process.env[envName];
  await Promise.all([c15?.remove(), c18?.remove()]);
});

function assertNoSecret(value: unknown, what: string): void {
  const text = JSON.stringify(value);
  for (const p of passwords) assert.ok(!text.includes(p), `${what} holds a cluster's password`);
}

async function clusterRows(name: string) {
  return t.app.parts.db.cluster.findMany({ where: { name } });
}

test('a PostgreSQL 15 server registered by an environment variable: checked, prepared, stored with its name only', async () => {
  const r = await t.gql(REGISTER, { input: { name: 'pg15', connectionUrlEnv: envName, region: 'eu-west', labels: ['ssd', 'gold'], maxTenants: 50 } });
  assert.equal(r.errors, undefined);
  const p = r.data.registerCluster;
  assert.deepEqual(p.userErrors, []);
  assertNoSecret(r, 'the response');
  const c = p.cluster;
  ids.pg15 = c.id;
  assert.equal(c.status, 'ACTIVE');
  assert.equal(c.region, 'eu-west');
  assert.deepEqual(c.labels, ['gold', 'ssd']);
  assert.equal(c.maxTenants, 50);
  assert.equal(c.holdsControlDatabase, false);
  assert.equal(c.connectionUrlSource, 'ENV');
  assert.equal(c.connectionUrlEnv, envName);
  assert.equal(c.reachable, true);
  assert.equal(c.unreachableReason, null);
  assert.match(c.serverVersion, /^15\./);
  assert.equal(c.walLevel, 'logical');
  assert.equal(c.replicationSlotsFree, 20);
  assert.equal(c.maxWalSenders, 20);
  assert.equal(c.canTakeMoves, true);
  assert.equal(c.tenantCount, 0);
  assert.equal(c.allocatedConnections, 0);
  assert.ok(c.capacity > 0);
  assert.equal(c.roomConnections, c.capacity, 'empty: all of its capacity is room');
  assert.deepEqual(p.warnings, []);

  const [row] = await clusterRows('pg15');
  assert.equal(row!.connectionUrlEnv, envName);
  assert.equal(row!.connectionUrlSealed, null);
  assert.equal(row!.connectionUrl, null);
  // Prepared: the default template's database is on it.
  const client = new pg.Client({ connectionString: c15.url });
  await client.connect();
  const tpl = await client.query(`SELECT datname FROM pg_database WHERE datistemplate AND starts_with(datname, $1)`, [`${t.controlDatabase}_tpl_`]);
  await client.end();
  assert.equal(tpl.rowCount, 1);

  const audit = await t.app.parts.db.auditEvent.findMany({ where: { action: 'cluster.registered', subject: 'pg15' } });
  assert.equal(audit.length, 1);
  assert.equal((audit[0]!.metadata as { connectionUrlEnv: string }).connectionUrlEnv, envName);
  assertNoSecret(audit, 'the audit event');
});

test('a PostgreSQL 18 server registered by its URL: stored sealed, never returned', async () => {
  const r = await t.gql(REGISTER, { input: { name: 'pg18', connectionUrl: c18.url, labels: ['bulk'] } });
  assert.deepEqual(r.data.registerCluster.userErrors, []);
  const c = r.data.registerCluster.cluster;
  ids.pg18 = c.id;
  assert.equal(c.connectionUrlSource, 'SEALED');
  assert.equal(c.connectionUrlEnv, null);
  assert.match(c.serverVersion, /^18\./);
  assert.equal(c.region, null);
  assert.equal(c.maxTenants, null);
  const [row] = await clusterRows('pg18');
  assert.ok(row!.connectionUrlSealed?.startsWith('v1.'));
  assertNoSecret(row, 'the stored row');
  assert.equal(await t.app.parts.clusters.urlOf(row!), c18.url, 'the sealed URL opens to the one given');

  const all = await t.gql(CLUSTERS);
  assert.equal(all.errors, undefined);
  assert.deepEqual(all.data.clusters.map((x: { name: string }) => x.name), ['default', 'pg15', 'pg18']);
  assertNoSecret(all, 'the clusters query');
  const def = all.data.clusters[0];
  assert.equal(def.connectionUrlSource, 'CONTROL_SERVER');
  assert.equal(def.holdsControlDatabase, true);
  const audit = await t.app.parts.db.auditEvent.findMany({ where: { category: 'cluster' } });
  assertNoSecret(audit, 'the audit trail');
});

test('unreachable, a wrong password, an underprivileged role, the same server twice, a taken name: refused, nothing stored', async () => {
  const before = await t.app.parts.db.cluster.count();
  const auditBefore = await t.app.parts.db.auditEvent.count({ where: { category: 'cluster' } });
  const refuse = async (input: Record<string, unknown>, code: string, field: string, message: RegExp) => {
    const r = await t.gql(REGISTER, { input });
    assert.equal(r.errors, undefined);
    const p = r.data.registerCluster;
    assert.equal(p.cluster, null);
    assert.deepEqual(p.userErrors.map((e: { code: string; field: string }) => [e.code, e.field]), [[code, field]], JSON.stringify(p.userErrors));
    assert.match(p.userErrors[0].message, message);
    assertNoSecret(r, 'a refusal');
  };

  const port = await freePort();
  await refuse({ name: 'nowhere', connectionUrl: `postgresql://postgres:secret@127.0.0.1:${port}/postgres` }, 'CLUSTER_UNREACHABLE', 'connectionUrl', new RegExp(`cannot reach 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));

  const wrong = new URL(c18.url);
  wrong.password = 'not-the-password';
  await refuse({ name: 'wrong-password', connectionUrl: wrong.toString() }, 'CLUSTER_UNREACHABLE', 'connectionUrl', /password authentication failed/);

  // A role with CREATEDB but without CREATEROLE (nor the monitoring roles).
  const weakPassword = randomBytes(8).toString('hex');
  const su = new pg.Client({ connectionString: c18.url });
  await su.connect();
  await su.query(`CREATE ROLE weak LOGIN CREATEDB PASSWORD '${weakPassword}'`);
  const weak = new URL(c18.url);
  weak.username = 'weak';
  weak.password = weakPassword;
  try {
    await refuse({ name: 'weak', connectionUrl: weak.toString() }, 'CLUSTER_UNSUITABLE', 'connectionUrl', /the role "weak" is not a superuser and lacks CREATEROLE \(tenant roles\) \(ALTER ROLE "weak" CREATEROLE;\)/);
  } finally {
    await su.query('DROP ROLE weak');
    await su.end();
  }

  const other = new URL(c18.url);
  other.pathname = '/template1';
  await refuse({ name: 'pg18-again', connectionUrl: other.toString() }, 'INVALID_INPUT', 'connectionUrl', /same server as the registered cluster pg18/);
  await refuse({ name: 'pg15', connectionUrl: c18.url }, 'INVALID_INPUT', 'name', /a cluster named pg15 is already registered/);
  await refuse({ name: 'both', connectionUrl: c18.url, connectionUrlEnv: envName }, 'INVALID_INPUT', 'connectionUrl', /not both/);
  await refuse({ name: 'unset', connectionUrlEnv: 'TENANTRY_TEST_NOT_SET_ANYWHERE' }, 'INVALID_INPUT', 'connectionUrlEnv', /is not set/);
  await refuse({ name: 'Bad Name', connectionUrl: c18.url }, 'INVALID_INPUT', 'name', /lowercase/);

  assert.equal(await t.app.parts.db.cluster.count(), before, 'no cluster row was stored');
  assert.equal(await t.app.parts.db.auditEvent.count({ where: { category: 'cluster' } }), auditBefore, 'nothing was audited');
});

test('updateCluster: labels, region and cap change; a new URL must reach the same server', async () => {
  const r = await t.gql(UPDATE, { input: { id: ids.pg15, labels: ['ssd'], region: null, maxTenants: null } });
  assert.deepEqual(r.data.updateCluster.userErrors, []);
  const c = r.data.updateCluster.cluster;
  assert.deepEqual(c.labels, ['ssd']);
  assert.equal(c.region, null);
  assert.equal(c.maxTenants, null);

  // Another server's URL: refused, nothing changed.
  const refused = await t.gql(UPDATE, { input: { id: ids.pg15, connectionUrl: c18.url } });
  assert.deepEqual(refused.data.updateCluster.userErrors.map((e: { code: string }) => e.code), ['INVALID_INPUT']);
  assert.match(refused.data.updateCluster.userErrors[0].message, /is another server .* than cluster pg15/);
  const [row] = await clusterRows('pg15');
  assert.equal(row!.connectionUrlEnv, envName);

  // The same server by another URL (another database): accepted, now sealed.
  const same = new URL(c15.url);
  same.pathname = '/template1';
  const moved = await t.gql(UPDATE, { input: { id: ids.pg15, connectionUrl: same.toString() } });
  assert.deepEqual(moved.data.updateCluster.userErrors, []);
  assert.equal(moved.data.updateCluster.cluster.connectionUrlSource, 'SEALED');
  assert.equal(moved.data.updateCluster.cluster.reachable, true);
  assertNoSecret(moved, 'the response');
  const [after] = await clusterRows('pg15');
  assert.equal(after!.connectionUrlEnv, null);
  assert.equal((await t.app.parts.clusters.get(decodeGlobalID(ids.pg15!).id)).url, same.toString(), 'the admin connections follow the new URL');

  const control = (await t.gql(CLUSTERS)).data.clusters.find((x: { name: string }) => x.name === 'default');
  const refusedControl = await t.gql(UPDATE, { input: { id: control.id, connectionUrl: c18.url } });
  assert.match(refusedControl.data.updateCluster.userErrors[0].message, /holds the control database/);

  const audit = await t.app.parts.db.auditEvent.findMany({ where: { action: 'cluster.updated' }, orderBy: { whenUtc: 'asc' } });
  assert.equal(audit.length, 2);
  assertNoSecret(audit, 'the audit trail');
});

test('cordon and uncordon, audited; removeCluster refused while a tenant remains, done after deprovisioning', async () => {
  const cordoned = await t.gql(CORDON, { input: { id: ids.pg18 } });
  assert.deepEqual(cordoned.data.cordonCluster, { cluster: { id: ids.pg18, status: 'CORDONED' }, userErrors: [] });
  const refused = await t.gql(PROVISION, { input: { slug: 'on-cordoned', displayName: 'x', placement: { clusterId: ids.pg18 } } });
  assert.deepEqual(refused.data.provisionTenant.userErrors.map((e: { code: string }) => e.code), ['PLACEMENT_FAILED']);
  assert.match(refused.data.provisionTenant.userErrors[0].message, /pg18: CORDONED/);
  const back = await t.gql(CORDON, { input: { id: ids.pg18, cordoned: false } });
  assert.equal(back.data.cordonCluster.cluster.status, 'ACTIVE');
  assert.deepEqual(
    (await t.app.parts.db.auditEvent.findMany({ where: { category: 'cluster', subject: 'pg18', action: { in: ['cluster.cordoned', 'cluster.uncordoned'] } }, orderBy: { whenUtc: 'asc' } })).map((a) => a.action),
    ['cluster.cordoned', 'cluster.uncordoned'],
  );

  const p = await t.gql(PROVISION, { input: { slug: 'lives-on-18', displayName: 'x', placement: { clusterId: ids.pg18 } } });
  assert.deepEqual(p.data.provisionTenant.userErrors, []);
  const figures = (await t.gql(CLUSTERS)).data.clusters.find((x: { name: string }) => x.name === 'pg18');
  assert.equal(figures.tenantCount, 1);
  assert.equal(figures.allocatedConnections, 5);
  assert.equal(figures.roomConnections, figures.capacity - 5);
  assert.match(p.data.provisionTenant.connectionString, new RegExp(`@127\\.0\\.0\\.1:${c18.port}/`));

  const notEmpty = await t.gql(REMOVE, { input: { id: ids.pg18 } });
  assert.deepEqual(notEmpty.data.removeCluster.userErrors.map((e: { code: string }) => e.code), ['CLUSTER_NOT_EMPTY']);
  assert.match(notEmpty.data.removeCluster.userErrors[0].message, /still holds 1 tenant: lives-on-18 \(ACTIVE\)/);

  const control = (await t.gql(CLUSTERS)).data.clusters.find((x: { name: string }) => x.name === 'default');
  const controlRefused = await t.gql(REMOVE, { input: { id: control.id } });
  assert.deepEqual(controlRefused.data.removeCluster.userErrors.map((e: { code: string }) => e.code), ['CLUSTER_NOT_EMPTY']);

  const d = await t.gql(DEPROVISION, { input: { slug: 'lives-on-18', confirm: 'lives-on-18' } });
  assert.deepEqual(d.data.deprovisionTenant.userErrors, []);
  const removed = await t.gql(REMOVE, { input: { id: ids.pg18 } });
  assert.deepEqual(removed.data.removeCluster, { removedClusterId: ids.pg18, name: 'pg18', userErrors: [] });
  assert.deepEqual(await clusterRows('pg18'), []);
  assert.equal(await t.app.parts.db.tenant.count({ where: { slug: 'lives-on-18' } }), 0, 'the deprovisioned tenant\'s record went with its cluster');
  assert.equal((await t.app.parts.db.auditEvent.findMany({ where: { action: 'cluster.removed', subject: 'pg18' } })).length, 1);
  const names = (await t.gql(CLUSTERS)).data.clusters.map((x: { name: string }) => x.name);
  assert.deepEqual(names, ['default', 'pg15']);

  const again = await t.gql(REMOVE, { input: { id: ids.pg15 } });
  assert.deepEqual(again.data.removeCluster.userErrors, []);
});
