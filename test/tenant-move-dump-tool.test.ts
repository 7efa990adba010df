// @test-scope once (its control database and clusters are private PostgreSQL servers, whatever the run's server)
// Issue 17: moves need pg_dump/pg_restore of a major version at least the source server's. Only
// PostgreSQL 15's client tools are installed here, so a tenant on a PostgreSQL 18 server is
// refused with DUMP_TOOL_UNAVAILABLE naming both versions, in either mode, and nothing is created.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { findDumpTools } from '../src/modules/moves/index.js';
import { startPrivateCluster, type PrivateCluster } from './support/private-cluster.js';
import { PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

let source: PrivateCluster;
let target: PrivateCluster;
let t: TestTenantry;
let targetId: string;
let sourceId: string;
const envVar = `TENANTRY_MOVE_DUMP_TARGET_${process.pid}`;

const newest = (await findDumpTools())[0]?.major ?? 0;

before(async () => {
  [source, target] = await Promise.all([startPrivateCluster({ version: 18 }), startPrivateCluster({ version: 18 })]);
  process.env[envVar] = target.url;
  t = await startTestTenantry({ serverUrl: source.url });
  const control = new pg.Client({ connectionString: source.url.replace(/\/postgres$/, `/${t.controlDatabase}`) });
  await control.connect();
  sourceId = (await control.query(`SELECT id::text FROM clusters WHERE name = 'default'`)).rows[0].id;
  targetId = randomUUID();
  await control.query(`INSERT INTO clusters (id, name, connection_url_env, status, updated_at) VALUES ($1, 'target-18', $2, 'ACTIVE', now())`, [targetId, envVar]);
  await control.end();
});

after(async () => {
  await t?.stop();
  await Promise.all([source?.remove(), target?.remove()]);
  delete process.env[envVar];
});

test('a PostgreSQL 18 source without pg_dump 18: DUMP_TOOL_UNAVAILABLE naming both versions, nothing created', { skip: newest >= 18 ? 'pg_dump 18 is installed here' : false }, async () => {
  const p = (await t.gql(PROVISION, { input: { slug: 'mv-18', displayName: 'mv-18', maxConnections: 5, placement: { clusterId: sourceId } } })).data.provisionTenant;
  assert.deepEqual(p.userErrors, []);
  for (const mode of ['ONLINE', 'OFFLINE']) {
    const r = await t.gql(`mutation($input: MoveTenantInput!) { moveTenant(input: $input) { move { id } userErrors { code field message } } }`, {
      input: { slug: 'mv-18', targetClusterId: targetId, mode },
    });
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const e = r.data.moveTenant.userErrors;
    assert.equal(r.data.moveTenant.move, null);
    assert.equal(e[0]?.code, 'DUMP_TOOL_UNAVAILABLE', JSON.stringify(e));
    assert.match(e[0].message, /PostgreSQL 18 or newer \(the source server is 18, the target 18\)/);
    assert.match(e[0].message, new RegExp(`version ${newest}`));
  }
  const onTarget = new pg.Client({ connectionString: target.url });
  await onTarget.connect();
  const { rows } = await onTarget.query(`SELECT (SELECT count(*)::int FROM pg_database WHERE datname = $1) AS dbs, (SELECT count(*)::int FROM pg_roles WHERE rolname = $1) AS roles`, [p.tenant.databaseName]);
  await onTarget.end();
  assert.deepEqual(rows[0], { dbs: 0, roles: 0 });
  const moves = await t.gql(`{ tenant(slug: "mv-18") { moves { id } } }`);
  assert.deepEqual(moves.data.tenant.moves, []);
});
