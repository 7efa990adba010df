// PgBouncer's auth_query set-up for a control plane that is not superuser: start-up says
// what is missing and the SQL to run once; after a superuser runs exactly that SQL, the
// control plane creates its auth user and installs the lookup function itself.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import format from 'pg-format';
import { ClusterAdmin } from '../src/platform/db/cluster-admin.js';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { PoolerAuth, PoolerSetupError, lookupRoleSetupSql } from '../src/modules/pools/pgbouncer/pooler-auth.js';
import { generatePassword, scramSha256Verifier } from '../src/modules/tenants/credentials.js';
import { createLogger } from '../src/platform/logger.js';
import { TEST_LIMITS, testServerUrl } from './support/test-tenantry.js';

const prefix = `pgbt_${randomBytes(4).toString('hex')}_`;
const lp = { name: `${prefix}control`, password: generatePassword() };
const tenant = `${prefix}tenant`;
const database = `${prefix}db`;
const roles = { lookupRole: `${prefix}lookup`, authUser: `${prefix}auth` };
const logger = createLogger('silent');

let superuser: pg.Pool;
let asControlPlane: ClusterAdmin;
let versionNum: number;

before(async () => {
  superuser = new pg.Pool({ connectionString: testServerUrl(), max: 2 });
  versionNum = Number((await superuser.query('SHOW server_version_num')).rows[0].server_version_num);
  // The least-privilege control plane of issue 8: CREATEDB, CREATEROLE, no superuser.
  await superuser.query(format('CREATE ROLE %I LOGIN CREATEDB CREATEROLE PASSWORD %L', lp.name, scramSha256Verifier(lp.password)));
  const url = new URL(testServerUrl());
  url.username = lp.name;
  url.password = lp.password;
  asControlPlane = new ClusterAdmin('lp', 'lp', url.toString(), true, TEST_LIMITS);
});

after(async () => {
  await asControlPlane?.close();
  await superuser.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', database));
  for (const r of [tenant, roles.authUser, roles.lookupRole, lp.name]) await superuser.query(format('DROP ROLE IF EXISTS %I', r)).catch(() => undefined);
  await superuser.end();
});

test('without the lookup role, a least-privilege control plane is told exactly what a superuser must run', async () => {
  await assert.rejects(PoolerAuth.prepare(asControlPlane, roles, generatePassword(), logger), (err: Error) => {
    assert.ok(err instanceof PoolerSetupError);
    assert.match(err.message, new RegExp(`role "${roles.lookupRole}" does not exist`));
    assert.ok(err.message.endsWith(lookupRoleSetupSql(roles.lookupRole, lp.name, versionNum)), err.message);
    return true;
  });
  const made = await superuser.query('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [[roles.lookupRole, roles.authUser]]);
  assert.deepEqual(made.rows, [], 'nothing was created');
});

test('after the one-time SQL, it creates its auth user and installs the lookup function in a database it owns', async () => {
  for (const statement of lookupRoleSetupSql(roles.lookupRole, lp.name, versionNum).split('\n')) await superuser.query(statement);
  const password = generatePassword();
  const auth = await PoolerAuth.prepare(asControlPlane, roles, password, logger);
  const authRole = await superuser.query('SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1', [roles.authUser]);
  assert.deepEqual(authRole.rows[0], { rolcanlogin: true, rolsuper: false, rolcreaterole: false, rolcreatedb: false });

  // A tenant database as the control plane makes it: its own, CONNECT for the tenant only.
  await asControlPlane.query(format('CREATE ROLE %I LOGIN PASSWORD %L', tenant, scramSha256Verifier(generatePassword())));
  await asControlPlane.query(format('CREATE DATABASE %I TEMPLATE template0', database));
  await asControlPlane.query(format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', database));
  await asControlPlane.query(format('GRANT CONNECT ON DATABASE %I TO %I', database, tenant));
  await auth.allowLogin(asControlPlane, database);
  await auth.allowLogin(asControlPlane, database); // idempotent

  // The auth user, logged in with the stored password, gets the tenant's verifier only.
  const url = new URL(withDatabase(testServerUrl(), database));
  url.username = roles.authUser;
  url.password = password;
  const asAuthUser = new pg.Client({ connectionString: url.toString() });
  await asAuthUser.connect();
  try {
    const ask = async (who: string) => (await asAuthUser.query<{ username: string; password: string }>('SELECT username, password FROM tenantry.pgbouncer_lookup($1)', [who])).rows;
    const found = await ask(tenant);
    assert.equal(found.length, 1);
    assert.match(found[0]!.password, /^SCRAM-SHA-256\$4096:/);
    assert.deepEqual(await ask(lp.name), [], 'the database owner (the control plane)');
    assert.deepEqual(await ask(new URL(testServerUrl()).username || 'postgres'), [], 'a superuser');
  } finally {
    await asAuthUser.end();
  }
});
