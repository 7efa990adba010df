// Switching an existing install to a least-privilege role (issue 14, item 15): a Tenantry runs
// as a superuser on a fresh control database and provisions tenants (with PgBouncer); then a
// new role gets the new-install SQL and starts on the same control database and tenants. That
// start fails with one message naming the command to run; after running exactly that command
// (the script it prints, through psql, as the superuser), the role starts and every mutation
// works on the old tenants. Real PostgreSQL, real PgBouncer, real psql.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import pg from 'pg';
import format from 'pg-format';
import { loadConfig } from '../src/platform/config.js';
import { leastPrivilegeSetupSql } from '../src/platform/db/least-privilege-setup.js';
import { findPgBouncer } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { generatePassword, scramSha256Verifier } from '../src/modules/tenants/credentials.js';
import { freePort } from './support/free-port.js';
import { inDatabase } from './support/templates.js';
import { connectAs, PROVISION, startTestTenantry, testServerUrl, type TestTenantry } from './support/test-tenantry.js';

const run = promisify(execFile);
const role = `tenantry_switch_${randomBytes(3).toString('hex')}`;
const password = generatePassword();
const lookupRole = loadConfig({}).POOLER_LOOKUP_ROLE;
const pooler = findPgBouncer() ? 'pgbouncer' : 'none';

let superuser: pg.Pool;
let first: TestTenantry;
let second: TestTenantry | undefined;
let tmp: string;
let roleUrl: string;
let serverVersionNum: number;
const oldTenants: Record<string, { databaseName: string; roleName: string }> = {};

const env = async () => ({ POOLER: pooler, POOLER_DIR: path.join(tmp, 'pgbouncer'), POOLER_PORT: String(await freePort()) });

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'tenantry-switch-'));
  await chmod(tmp, 0o711); // PgBouncer runs as postgres when we are root
  superuser = new pg.Pool({ connectionString: testServerUrl(), max: 2 });
  serverVersionNum = Number((await superuser.query('SHOW server_version_num')).rows[0].server_version_num);

  // The install as it ran so far: a superuser control plane with tenants and a quota change.
  first = await startTestTenantry({ serverUrl: testServerUrl(), env: await env() });
  for (const slug of ['old-one', 'old-two']) {
    const r = await first.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 3, templateVersion: '1.0.0' } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
    oldTenants[slug] = r.data.provisionTenant.tenant;
  }
  // An extension the superuser control plane put in place (and that is due an update).
  await inDatabase(oldTenants['old-one']!.databaseName, (c) => c.query(`DROP EXTENSION pg_trgm CASCADE; CREATE EXTENSION pg_trgm WITH SCHEMA extensions VERSION '1.3'`));
  const q = await first.gql(`mutation { updateTenantQuota(input: { slug: "old-two", maxConnections: 4 }) { userErrors { code } } }`);
  assert.deepEqual(q.data.updateTenantQuota.userErrors, []);
  await first.stop();

  // What the README gives a new install, for a role of this file's own.
  for (const statement of leastPrivilegeSetupSql({ controlRole: role, passwordVerifier: scramSha256Verifier(password), lookupRole, serverVersionNum })) {
    await superuser.query(statement);
  }
  const url = new URL(testServerUrl());
  url.username = role;
  url.password = password;
  roleUrl = url.toString();
});

after(async () => {
  await second?.stop();
  await second?.admin.end();
  await first?.cleanup();
  await superuser?.query(format('DROP ROLE IF EXISTS %I', role));
  await superuser?.end();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const owners = async () =>
  (
    await superuser.query<{ datname: string; owner: string }>(
      `SELECT datname, pg_catalog.pg_get_userbyid(datdba) AS owner FROM pg_catalog.pg_database WHERE datname = ANY($1) ORDER BY datname`,
      [[first.controlDatabase, ...Object.values(oldTenants).map((t) => t.databaseName)]],
    )
  ).rows;

/** Relations, enums and schemas a superuser owns in `database` (outside the system's schemas). */
const superusersOwn = async (database: string) =>
  inDatabase(database, async (c) =>
    (
      await c.query<{ what: string }>(
        `SELECT c.relname AS what FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
          WHERE r.rolsuper AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
         UNION ALL SELECT t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace JOIN pg_catalog.pg_roles r ON r.oid = t.typowner
          WHERE r.rolsuper AND n.nspname = 'public' AND t.typtype = 'e'
         UNION ALL SELECT n.nspname FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
          WHERE r.rolsuper AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')`,
      )
    ).rows.map((r) => r.what),
  );

let command: string;

test('a least-privilege start on an install that ran as a superuser fails with one message naming the command to run, and changes nothing', async () => {
  const before = await owners();
  assert.ok(before.length === 3 && before.every((o) => o.owner !== role), JSON.stringify(before));
  assert.ok((await superusersOwn(first.controlDatabase)).includes('_prisma_migrations'), 'the superuser made the control database\'s tables');
  const inTenant = await superusersOwn(oldTenants['old-one']!.databaseName);
  assert.ok(inTenant.includes('__SchemaVersion') && inTenant.includes('extensions'), JSON.stringify(inTenant));
  await assert.rejects(startTestTenantry({ shareWith: first, serverUrl: roleUrl, env: await env() }), (err: Error) => {
    assert.equal(err.name, 'SuperuserLeftoversError', err.stack);
    const superuserName = new URL(testServerUrl()).username || 'postgres';
    assert.ok(err.message.startsWith(`the control database "${first.controlDatabase}" belongs to "${superuserName}", not to "${role}"`), err.message);
    const lines = err.message.split('\n');
    assert.equal(lines.length, 3, err.message);
    command = lines[1]!.trim();
    assert.match(command, new RegExp(`CONTROL_DATABASE=${first.controlDatabase} POOLER_LOOKUP_ROLE=${lookupRole} npm run -s least-privilege-sql -- ${role} --existing \\| psql '`));
    assert.doesNotMatch(err.message, /permission denied/);
    return true;
  });
  assert.deepEqual(await owners(), before);
});

test('after that command, the role starts on the same control database and every mutation works on the old tenants', async () => {
  assert.ok(command, 'the previous test found the command');
  // As an operator runs it: in a shell, from the repository, with the superuser's password from the environment.
  const superuserPassword = decodeURIComponent(new URL(testServerUrl()).password);
  const runCommand = () => run('sh', ['-c', command], { env: { ...process.env, ...(superuserPassword ? { PGPASSWORD: superuserPassword } : {}) }, maxBuffer: 16 << 20 });
  const { stdout, stderr } = await runCommand();
  assert.doesNotMatch(stderr, /ERROR/, stderr);
  assert.match(stdout, /ALTER DATABASE/);
  assert.match(stdout, /DROP DATABASE/, 'the superuser\'s template database is dropped');
  const handedOver = await owners();
  assert.ok(handedOver.length === 3 && handedOver.every((o) => o.owner === role), JSON.stringify(handedOver));

  // Inside: the control database's tables and types, and what the control plane keeps in a tenant database.
  assert.deepEqual(await superusersOwn(first.controlDatabase), []);
  assert.deepEqual(await superusersOwn(oldTenants['old-one']!.databaseName), []);

  second = await startTestTenantry({ shareWith: first, serverUrl: roleUrl, env: await env() });
  assert.match(second.logs.join(''), /control plane runs as a least-privilege role/);
  const gql = async (query: string, field: string) => {
    const r = await second!.gql(query);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    assert.deepEqual(r.data[field].userErrors ?? [], [], `${field}: ${JSON.stringify(r.data[field].userErrors)}`);
    return r.data[field];
  };

  const quota = await gql(`mutation { updateTenantQuota(input: { slug: "old-one", maxConnections: 5 }) { quota { maxConnections } pool { status } userErrors { code message } } }`, 'updateTenantQuota');
  assert.equal(quota.quota.maxConnections, 5);
  if (pooler === 'pgbouncer') assert.equal(quota.pool.status, 'IN_SYNC');
  const limit = await superuser.query('SELECT rolconnlimit FROM pg_catalog.pg_roles WHERE rolname = $1', [oldTenants['old-one']!.roleName]);
  assert.equal(limit.rows[0].rolconnlimit, 5);

  assert.equal((await gql(`mutation { suspendTenant(input: { slug: "old-one" }) { tenant { status } userErrors { code message } } }`, 'suspendTenant')).tenant.status, 'SUSPENDED');
  assert.equal((await gql(`mutation { resumeTenant(input: { slug: "old-one" }) { tenant { status } userErrors { code message } } }`, 'resumeTenant')).tenant.status, 'ACTIVE');

  const rotated = await gql(`mutation { rotateTenantCredentials(input: { slug: "old-one" }) { connectionString pooledConnectionString userErrors { code message } } }`, 'rotateTenantCredentials');
  const direct = await connectAs(rotated.connectionString);
  const pid = (await direct.query<{ pid: number }>('SELECT pg_catalog.pg_backend_pid() AS pid')).rows[0]!.pid;
  if (pooler === 'pgbouncer') {
    const pooled = await connectAs(rotated.pooledConnectionString);
    assert.equal((await pooled.query('SELECT current_user AS u')).rows[0].u, oldTenants['old-one']!.roleName);
    await pooled.end();
  }
  const ended = await gql(`mutation { terminateConnection(input: { slug: "old-one", pid: ${pid} }) { terminatedPid userErrors { code message } } }`, 'terminateConnection');
  assert.equal(ended.terminatedPid, pid);
  await direct.end().catch(() => undefined);

  const upgraded = await gql(`mutation { upgradeTenantSchema(input: { slug: "old-one" }) { toVersion failedStep { message } userErrors { code message } } }`, 'upgradeTenantSchema');
  assert.deepEqual([upgraded.toVersion, upgraded.failedStep], ['1.1.0', null]);
  // The extension the superuser installed stays its own (PostgreSQL cannot hand one over): the
  // update says so, with the statement a superuser runs, and running it does the update.
  const answered = await second.gql(`mutation { updateTenantExtensions(input: { slug: "old-one" }) { changes userErrors { code message } } }`);
  assert.equal(answered.errors, undefined, JSON.stringify(answered.errors));
  const extensions = answered.data.updateTenantExtensions;
  const superuserName = new URL(testServerUrl()).username || 'postgres';
  const stays = new RegExp(`^extension pg_trgm stays at 1\\.3: it belongs to "${superuserName}", and only its owner or a superuser can update it; as a superuser, in database "${oldTenants['old-one']!.databaseName}", run (ALTER EXTENSION pg_trgm UPDATE TO '[0-9.]+')$`);
  assert.deepEqual(extensions.changes, []);
  assert.deepEqual(extensions.userErrors.map((e: { code: string }) => e.code), ['EXTENSION_NOT_OWNED'], JSON.stringify(extensions.userErrors));
  const statement = stays.exec(extensions.userErrors[0].message)?.[1];
  assert.ok(statement, extensions.userErrors[0].message);
  await inDatabase(oldTenants['old-one']!.databaseName, (c) => c.query(statement));
  const refreshed = await gql(`mutation { updateTenantExtensions(input: { slug: "old-one" }) { changes tenant { extensions { name status } } userErrors { code message } } }`, 'updateTenantExtensions');
  assert.deepEqual([refreshed.changes, refreshed.tenant.extensions.find((e: { name: string }) => e.name === 'pg_trgm').status], [[], 'OK']);
  await gql(`mutation { refreshTenant(input: { slug: "old-one" }) { userErrors { code message } } }`, 'refreshTenant');
  const reconciled = await gql(`mutation { reconcilePools { report { outcome error } userErrors { code message } } }`, 'reconcilePools');
  assert.deepEqual([reconciled.report.outcome, reconciled.report.error], ['IN_SYNC', null]);

  const key = await gql(`mutation { createApiKey(input: { name: "after-switch", role: TENANT_READER, tenantSlug: "old-one" }) { key apiKey { id } userErrors { code message } } }`, 'createApiKey');
  await gql(`mutation { revokeApiKey(input: { id: "${key.apiKey.id}" }) { apiKey { revokedAt } userErrors { code message } } }`, 'revokeApiKey');

  // A new tenant comes from a template database the role prepares itself.
  const fresh = await second.gql(PROVISION, { input: { slug: 'new-one', displayName: 'new', maxConnections: 3 } });
  assert.deepEqual(fresh.data.provisionTenant.userErrors, []);
  const c = await connectAs(fresh.data.provisionTenant.connectionString);
  assert.equal((await c.query(`SELECT pg_catalog.pg_get_userbyid(relowner) AS owner FROM pg_catalog.pg_class WHERE relname = 'documents'`)).rows[0].owner, fresh.data.provisionTenant.tenant.roleName);
  await c.end();

  const gone = await gql(`mutation { deprovisionTenant(input: { slug: "old-two", confirm: "old-two" }) { tenant { status } userErrors { code message } } }`, 'deprovisionTenant');
  assert.equal(gone.tenant.status, 'DEPROVISIONED');
  const left = await superuser.query(`SELECT (SELECT count(*) FROM pg_catalog.pg_database WHERE datname = $1)::int AS dbs, (SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = $2)::int AS roles`, [
    oldTenants['old-two']!.databaseName,
    oldTenants['old-two']!.roleName,
  ]);
  assert.deepEqual(left.rows[0], { dbs: 0, roles: 0 });

  // The command again, with the role's Tenantry stopped: nothing to do, nothing of the role's undone.
  await second.stop();
  const templates = `SELECT datname FROM pg_catalog.pg_database WHERE pg_catalog.starts_with(datname, $1) ORDER BY datname`;
  const preparedByRole = (await superuser.query(templates, [`${first.controlDatabase}_tpl_`])).rows;
  assert.equal(preparedByRole.length, 1);
  const again = await runCommand();
  assert.doesNotMatch(again.stderr, /ERROR/, again.stderr);
  assert.doesNotMatch(again.stdout, /DROP DATABASE/);
  assert.deepEqual((await superuser.query(templates, [`${first.controlDatabase}_tpl_`])).rows, preparedByRole);
  assert.deepEqual(await superusersOwn(first.controlDatabase), []);
});
