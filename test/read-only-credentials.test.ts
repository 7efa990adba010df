import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { connectAs, DEPROVISION, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { until } from './support/subscriptions.js';
import { inDatabase } from './support/templates.js';

let t: TestTenantry;
before(async () => {
  t = await startTestTenantry({ env: { RECOVERY_INTERVAL_MS: '0' } });
});
after(() => t.cleanup());

const CREATE = `mutation Create($input: CreateReadOnlyCredentialsInput!) {
  createReadOnlyCredentials(input: $input) {
    credentials { id name roleName maxConnections createdBy expiresAt revokedAt status }
    connectionString
    userErrors { code field message }
  }
}`;
const REVOKE = `mutation Revoke($id: ID!) {
  revokeReadOnlyCredentials(input: { id: $id }) { credentials { id status revokedAt } userErrors { code field } }
}`;

const provision = async (slug: string, maxConnections = 20) => (await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections } })).data.provisionTenant;
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();
const create = async (input: Record<string, unknown>, key?: string) => (await t.gql(CREATE, { input }, key)).data.createReadOnlyCredentials;
const keyFor = async (slug: string, role = 'TENANT_ADMIN') =>
  (await t.gql(`mutation { createApiKey(input: { name: "k-${slug}-${role}", role: ${role}, tenantSlug: "${slug}" }) { key } }`)).data.createApiKey.key as string;
const refusal = (code: string) => (err: { code?: string }) => err.code === code;
/** Servers that trust local connections (the machine's PostgreSQL 15) never look at passwords, nor at VALID UNTIL. */
const checksPasswords = (connectionString: string) =>
  connectAs(connectionString.replace(/:[^:@/]+@/, ':wrong@')).then(
    async (c) => (await c.end(), false),
    () => true,
  );

let tenant: { roleName: string; databaseName: string; connectionString: string };
let owner: pg.Client;

test('read-only credentials read what the tenant owns, now and later, and change nothing', async () => {
  const p = await provision('bi');
  tenant = { ...p.tenant, connectionString: p.connectionString };
  owner = await connectAs(tenant.connectionString);
  await owner.query(`CREATE TABLE before_t (id serial PRIMARY KEY, v text); INSERT INTO before_t (v) VALUES ('old'); CREATE VIEW before_v AS SELECT v FROM before_t`);

  const made = await create({ slug: 'bi', expiresAt: inAnHour(), name: 'metabase' });
  assert.deepEqual(made.userErrors, []);
  const c = made.credentials;
  assert.equal(c.name, 'metabase');
  assert.equal(c.status, 'ACTIVE');
  assert.equal(c.maxConnections, 2, 'a tenth of the quota');
  assert.match(c.createdBy, /\(apikey:/);
  assert.ok(c.roleName.startsWith(`${tenant.roleName}.ro.`), c.roleName);
  const role = await t.admin.query(`SELECT rolconnlimit, rolvaliduntil, rolcanlogin, rolinherit FROM pg_roles WHERE rolname = $1`, [c.roleName]);
  assert.equal(role.rows[0].rolconnlimit, 2);
  assert.equal(role.rows[0].rolvaliduntil.toISOString(), c.expiresAt);
  assert.deepEqual([role.rows[0].rolcanlogin, role.rows[0].rolinherit], [true, false]);

  await owner.query(`CREATE TABLE after_t (v text); INSERT INTO after_t VALUES ('new')`);
  const reader = await connectAs(made.connectionString);
  try {
    assert.deepEqual((await reader.query('SELECT v FROM before_t')).rows, [{ v: 'old' }]);
    assert.deepEqual((await reader.query('SELECT v FROM before_v')).rows, [{ v: 'old' }]);
    assert.deepEqual((await reader.query('SELECT v FROM after_t')).rows, [{ v: 'new' }]);
    assert.equal((await reader.query(`SELECT pg_catalog.has_sequence_privilege('before_t_id_seq', 'SELECT') AS ok`)).rows[0].ok, true);
    await assert.rejects(reader.query(`INSERT INTO before_t (v) VALUES ('x')`), refusal('42501'));
    await assert.rejects(reader.query(`UPDATE after_t SET v = 'x'`), refusal('42501'));
    await assert.rejects(reader.query(`DELETE FROM after_t`), refusal('42501'));
    await assert.rejects(reader.query(`SELECT nextval('before_t_id_seq')`), refusal('42501'));
    await assert.rejects(reader.query(`CREATE TABLE mine (v text)`), refusal('42501'));
    await assert.rejects(reader.query(`CREATE TEMP TABLE mine (v text)`), refusal('42501'));
  } finally {
    await reader.end();
  }

  // The grants were made by the tenant's role (SET ROLE), not by the control plane.
  const grantors = await inDatabase(tenant.databaseName, async (db) => {
    const tables = await db.query(
      `SELECT DISTINCT g.rolname FROM pg_class c, aclexplode(c.relacl) a JOIN pg_roles g ON g.oid = a.grantor
       WHERE c.relname IN ('before_t', 'before_v', 'before_t_id_seq', 'after_t') AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
      [c.roleName],
    );
    const defaults = await db.query(`SELECT DISTINCT pg_get_userbyid(defaclrole) AS rolname FROM pg_default_acl WHERE defaclacl::text LIKE '%' || $1 || '%'`, [c.roleName]);
    return [...tables.rows, ...defaults.rows].map((r) => r.rolname);
  });
  assert.deepEqual([...new Set(grantors)], [tenant.roleName]);

  const listed = await t.gql(`{ tenant(slug: "bi") { readOnlyCredentials { id roleName status } } }`);
  assert.deepEqual(listed.data.tenant.readOnlyCredentials, [{ id: c.id, roleName: c.roleName, status: 'ACTIVE' }]);
  const node = await t.gql(`query($id: ID!) { node(id: $id) { ... on ReadOnlyCredentials { roleName } } }`, { id: c.id });
  assert.equal(node.data.node.roleName, c.roleName);
});

test('read-only sessions are the tenant\'s: counted in its usage, listed in its connections, ended by terminateConnection', async () => {
  const made = await create({ slug: 'bi', expiresAt: inAnHour(), name: 'counted' });
  assert.deepEqual(made.userErrors, []);
  const reader = await connectAs(made.connectionString);
  const pid = (await reader.query('SELECT pg_catalog.pg_backend_pid() AS pid')).rows[0].pid as number;
  reader.on('error', () => undefined);
  try {
    const sessions = await t.gql(`{ tenant(slug: "bi") { connections { pid } } }`);
    assert.ok(sessions.data.tenant.connections.some((s: { pid: number }) => s.pid === pid), JSON.stringify(sessions.data));
    // The sampled usage counts it beside the owner's session (the database's CONNECTION LIMIT does).
    const usage = await until(
      async () => (await t.gql(`{ tenant(slug: "bi") { usage { current } } }`)).data.tenant.usage?.current as number,
      (n) => n >= 2,
      'the read-only session counted',
    );
    assert.ok(usage >= 2);
    const ended = await t.gql(`mutation($pid: Int!) { terminateConnection(input: { slug: "bi", pid: $pid }) { terminatedPid userErrors { code } } }`, { pid });
    assert.deepEqual(ended.data.terminateConnection, { terminatedPid: pid, userErrors: [] });
  } finally {
    await reader.end().catch(() => undefined);
  }
  await until(async () => (await t.gql(`{ tenant(slug: "bi") { connections { pid } } }`)).data.tenant.connections.map((s: { pid: number }) => s.pid), (pids) => !pids.includes(pid), 'the session gone');
  assert.deepEqual((await t.gql(REVOKE, { id: made.credentials.id })).data.revokeReadOnlyCredentials.userErrors, []);
});

test('lowering the quota counts read-only sessions (the database limit does) and terminateExcess can end them', async () => {
  const made = await create({ slug: 'bi', expiresAt: inAnHour(), name: 'excess' });
  assert.deepEqual(made.userErrors, []);
  const own: pg.Client[] = [];
  for (let i = 0; i < 9; i++) own.push(await connectAs(tenant.connectionString)); // with `owner`: 10 of the tenant's role
  const reader = await connectAs(made.connectionString); // the newest
  reader.on('error', () => undefined);
  const readerPid = (await reader.query('SELECT pg_catalog.pg_backend_pid() AS pid')).rows[0].pid as number;
  try {
    const lowered = await t.gql(
      `mutation { updateTenantQuota(input: { slug: "bi", maxConnections: 10, reason: "excess", terminateExcess: true }) { connectionsOverLimit terminatedPids userErrors { code } } }`,
    );
    assert.deepEqual(lowered.data.updateTenantQuota, { connectionsOverLimit: 1, terminatedPids: [readerPid], userErrors: [] });
  } finally {
    await reader.end().catch(() => undefined);
    for (const c of own) await c.end();
  }
  const back = await t.gql(`mutation { updateTenantQuota(input: { slug: "bi", maxConnections: 20 }) { userErrors { code } } }`);
  assert.deepEqual(back.data.updateTenantQuota.userErrors, []);
  assert.deepEqual((await t.gql(REVOKE, { id: made.credentials.id })).data.revokeReadOnlyCredentials.userErrors, []);
});

test('bad input and a tenant that is not ACTIVE are refused', async () => {
  const codes = async (input: Record<string, unknown>) => (await create({ slug: 'bi', expiresAt: inAnHour(), ...input })).userErrors.map((e: { code: string; field: string }) => `${e.code}:${e.field}`);
  assert.deepEqual(await codes({ expiresAt: new Date(Date.now() - 1000).toISOString() }), ['INVALID_INPUT:expiresAt']);
  assert.deepEqual(await codes({ expiresAt: new Date(Date.now() + 400 * 24 * 3600_000).toISOString() }), ['INVALID_INPUT:expiresAt']);
  assert.deepEqual(await codes({ maxConnections: 0 }), ['INVALID_INPUT:maxConnections']);
  assert.deepEqual(await codes({ maxConnections: 21 }), ['INVALID_INPUT:maxConnections']);
  assert.deepEqual(await codes({ slug: 'nobody' }), ['NOT_FOUND:slug']);
  await provision('napping');
  await t.gql(`mutation { suspendTenant(input: { slug: "napping" }) { userErrors { code } } }`);
  assert.deepEqual(await codes({ slug: 'napping' }), ['INVALID_STATE:slug']);
  const roles = await t.admin.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE $1`, [`${t.prefix}%.ro.%`]);
  assert.equal(roles.rows[0].n, 1, 'no role made by a refused call');
});

test('an expiry a few seconds ahead refuses logins once passed', async (ctx) => {
  const made = await create({ slug: 'bi', expiresAt: new Date(Date.now() + 3000).toISOString(), maxConnections: 1 });
  assert.deepEqual(made.userErrors, []);
  const early = await connectAs(made.connectionString);
  await early.end();
  await delay(3500);
  const listed = await t.gql(`{ tenant(slug: "bi") { readOnlyCredentials { id status } } }`);
  assert.equal(listed.data.tenant.readOnlyCredentials.find((x: { id: string }) => x.id === made.credentials.id).status, 'EXPIRED');
  if (await checksPasswords(made.connectionString)) await assert.rejects(connectAs(made.connectionString), refusal('28P01'));
  else ctx.diagnostic('this server trusts local connections: PostgreSQL checks VALID UNTIL only with a password');
});

test('revocation ends open sessions and the login; another tenant\'s key cannot touch them', async () => {
  const made = await create({ slug: 'bi', expiresAt: inAnHour(), name: 'to revoke' }, await keyFor('bi'));
  assert.deepEqual(made.userErrors, []);
  assert.match(made.credentials.createdBy, /^k-bi-TENANT_ADMIN \(apikey:/);
  const id = made.credentials.id;

  await provision('other');
  const stranger = await keyFor('other');
  assert.deepEqual((await create({ slug: 'bi', expiresAt: inAnHour() }, stranger)).userErrors.map((e: { code: string }) => e.code), ['NOT_FOUND']);
  assert.deepEqual((await t.gql(REVOKE, { id }, stranger)).data.revokeReadOnlyCredentials.userErrors, [{ code: 'NOT_FOUND', field: 'id' }]);
  const strangerSees = await t.gql(`query($id: ID!) { node(id: $id) { id } }`, { id }, stranger);
  assert.equal(strangerSees.data.node, null);
  const reader = await keyFor('bi', 'TENANT_READER');
  assert.equal((await t.gql(REVOKE, { id }, reader)).errors?.[0]?.extensions?.code, 'FORBIDDEN');

  const session = await connectAs(made.connectionString);
  const ended = new Promise((r) => session.once('error', r));
  const revoked = await t.gql(REVOKE, { id }, await keyFor('bi'));
  assert.deepEqual(revoked.data.revokeReadOnlyCredentials.userErrors, []);
  assert.equal(revoked.data.revokeReadOnlyCredentials.credentials.status, 'REVOKED');
  await ended;
  await assert.rejects(connectAs(made.connectionString));
  assert.equal((await t.admin.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [made.credentials.roleName])).rowCount, 0);
  const again = await t.gql(REVOKE, { id });
  assert.deepEqual(again.data.revokeReadOnlyCredentials, { credentials: revoked.data.revokeReadOnlyCredentials.credentials, userErrors: [] });

  const audit = await t.gql(`{ auditEvents(first: 10, filter: { tenantSlug: "bi" }) { edges { node { action actor subject } } } }`);
  const events = audit.data.auditEvents.edges.map((e: { node: { action: string; actor: string; subject: string } }) => e.node).filter((e: { subject: string }) => e.subject === made.credentials.roleName);
  assert.deepEqual(
    events.map((e: { action: string }) => e.action),
    ['tenant.read_only_credentials.revoked', 'tenant.read_only_credentials.created'],
  );
  assert.match(events[1].actor, /^k-bi-TENANT_ADMIN \(apikey:/);
});

test('suspending the tenant locks its read-only roles out; resuming lets them back; deprovisioning drops them', async () => {
  const made = await create({ slug: 'bi', expiresAt: inAnHour() });
  await t.gql(`mutation { suspendTenant(input: { slug: "bi" }) { userErrors { code } } }`);
  await assert.rejects(connectAs(made.connectionString), refusal('28000'));
  await t.gql(`mutation { resumeTenant(input: { slug: "bi" }) { userErrors { code } } }`);
  const back = await connectAs(made.connectionString);
  await back.end();
  const expired = await t.admin.query(`SELECT rolcanlogin FROM pg_roles WHERE rolname LIKE $1 AND rolvaliduntil < now()`, [`${tenant.roleName}.ro.%`]);
  assert.deepEqual(expired.rows, [{ rolcanlogin: true }], 'the expired role is still refused by its VALID UNTIL');

  await owner.end();
  const d = await t.gql(DEPROVISION, { input: { slug: 'bi', confirm: 'bi' } });
  assert.equal(d.data.deprovisionTenant.tenant.status, 'DEPROVISIONED');
  const left = await t.admin.query(`SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)`, [tenant.roleName]);
  assert.deepEqual(left.rows, []);
});

test('a hostile tenant\'s functions never run as the control plane while it grants and revokes', async () => {
  const p = await provision('hostile');
  const evil = await connectAs(p.connectionString);
  // Every function the grant and revoke paths name, shadowed in the tenant's schema, plus a
  // trigger and a rule: each records who ran it.
  await evil.query(`
    CREATE TABLE spy (who text, what text);
    GRANT INSERT ON spy TO PUBLIC;
    CREATE FUNCTION public.note(what text) RETURNS boolean LANGUAGE sql SECURITY INVOKER AS $$ INSERT INTO public.spy VALUES (current_user, what) RETURNING true $$;
    CREATE FUNCTION public.starts_with(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT public.note('starts_with') $$;
    CREATE FUNCTION public.aclexplode(aclitem[]) RETURNS TABLE (grantor oid, grantee oid, privilege_type text, is_grantable boolean) LANGUAGE sql AS $$ SELECT 0::oid, 0::oid, 'x', public.note('aclexplode') $$;
    CREATE FUNCTION public.pg_terminate_backend(integer) RETURNS boolean LANGUAGE sql AS $$ SELECT public.note('pg_terminate_backend') $$;
    CREATE FUNCTION public.format(text, text, text) RETURNS text LANGUAGE sql AS $$ SELECT public.note('format')::text $$;
    CREATE FUNCTION public.spy_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM public.note('trigger'); RETURN NEW; END $$;
    CREATE TABLE watched (v text);
    CREATE TRIGGER watched_trigger BEFORE INSERT OR UPDATE OR DELETE ON watched FOR EACH ROW EXECUTE FUNCTION public.spy_trigger();
    CREATE RULE watched_rule AS ON UPDATE TO watched DO ALSO SELECT public.note('rule');
  `);
  // The traps work: the tenant's own insert sets off the trigger, recorded as the tenant.
  await evil.query(`INSERT INTO watched VALUES ('x')`);
  const made = await create({ slug: 'hostile', expiresAt: inAnHour() });
  assert.deepEqual(made.userErrors, []);
  const reader = await connectAs(made.connectionString);
  assert.deepEqual((await reader.query('SELECT count(*)::int AS n FROM watched')).rows, [{ n: 1 }]);
  await reader.end();
  assert.deepEqual((await t.gql(REVOKE, { id: made.credentials.id })).data.revokeReadOnlyCredentials.userErrors, []);
  assert.deepEqual((await evil.query('SELECT who, what FROM spy')).rows, [{ who: p.tenant.roleName, what: 'trigger' }]);
  await evil.end();
});
