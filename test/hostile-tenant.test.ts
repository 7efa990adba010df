// Issue 8: a tenant holding its own connection string, owning objects in its database, tries
// to make the control plane run its code (search_path tricks, shadowed catalogs, functions and
// operators, triggers, rules, checks, deferred triggers, cursors), to break its database's
// settings, and to get in the way of other tenants. Nothing it creates may run as anyone but
// itself; nothing it does may break another tenant or the server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import format from 'pg-format';
import { connectAs, PROVISION, settle, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { inDatabase, TestTemplates } from './support/templates.js';
import { until } from './support/subscriptions.js';
import { SCHEMA_MIGRATION_LOCK } from '../src/platform/locks/lock-names.js';

let t: TestTenantry;
let templates: TestTemplates;

/** The hostile template: 1.1.0 touches the tenant's rows (an UPDATE), so the tenant's triggers, rules and checks fire during the upgrade. */
const HOSTILE = {
  v1: `CREATE TABLE items (id int PRIMARY KEY, note text);`,
  v2: `ALTER TABLE items ADD COLUMN flag boolean; UPDATE items SET flag = true;`,
};

before(async () => {
  templates = await TestTemplates.create();
  const manifest = { description: 'x', tables: ['items'], extensions: { required: [{ name: 'pg_trgm', minVersion: '1.3' }] } };
  await templates.add('hostile', '1.0.0', manifest, HOSTILE.v1);
  await templates.add('hostile', '1.1.0', manifest, HOSTILE.v2);
  t = await startTestTenantry({ env: { TEMPLATES_DIR: templates.dir, LOCK_TIMEOUT_MS: '1500' } });
});
after(async () => {
  await t.cleanup();
  await templates.remove();
});

async function provision(slug: string, extra: Record<string, unknown> = {}) {
  const r = (await t.gql(PROVISION, { input: { slug, displayName: slug, ...extra } })).data.provisionTenant;
  assert.deepEqual(r.userErrors, []);
  return r as { tenant: { databaseName: string; roleName: string }; connectionString: string };
}

/**
 * Plants, as the tenant, everything that would run its code in a careless control plane
 * session. Every planted function records who ran it (current_user, session_user) in
 * tripwire_log and tries to escalate: ALTER ROLE ... SUPERUSER, then RESET ROLE.
 */
async function plant(tenant: pg.Client, role: string): Promise<void> {
  await tenant.query(`
    CREATE TABLE public.tripwire_log (cu text, su text, what text, at timestamptz DEFAULT clock_timestamp());
    GRANT ALL ON public.tripwire_log TO PUBLIC;
    -- Its own code names pg_catalog.format: its public.format below calls the tripwire, and an
    -- unqualified call would recurse until the statement timeout.
    CREATE FUNCTION public.tripwire(what text) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO public.tripwire_log (cu, su, what) VALUES (current_user, session_user, what);
      BEGIN
        EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', ${format('%L', role)});
        INSERT INTO public.tripwire_log (cu, su, what) VALUES (current_user, session_user, what || ': ESCALATED');
      EXCEPTION WHEN others THEN NULL;
      END;
      BEGIN
        RESET ROLE;
        -- Harmless in the tenant's own session; in a control-plane session it would be the escape.
        INSERT INTO public.tripwire_log (cu, su, what) VALUES (current_user, session_user, what || ': after RESET ROLE');
      EXCEPTION WHEN others THEN NULL;
      END;
      RETURN true;
    END $$;
    GRANT EXECUTE ON FUNCTION public.tripwire(text) TO PUBLIC;
  `);
  // Catalog names shadowed in public (first on the tenant's own search_path).
  for (const view of ['pg_extension', 'pg_class', 'pg_namespace', 'pg_roles', 'pg_database', 'pg_stat_activity', 'pg_available_extension_versions', 'pg_constraint', 'pg_cursors']) {
    await tenant.query(format(`CREATE VIEW public.%I AS SELECT public.tripwire(%L) AS hit, 'x'::name AS extname, '1'::text AS extversion`, view, `view ${view}`));
  }
  // Functions and operators shadowing the catalog's, with signatures that would win a careless lookup.
  await tenant.query(`
    CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE sql AS $$ SELECT CASE WHEN public.tripwire('function lower') THEN $1 END $$;
    CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE sql AS $$ SELECT CASE WHEN public.tripwire('function format') THEN $1 END $$;
    CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT CASE WHEN public.tripwire('function now') THEN clock_timestamp() END $$;
    CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE sql AS $$ SELECT CASE WHEN public.tripwire('function current_setting') THEN '0' END $$;
    CREATE FUNCTION public.hashtextextended(text, bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT CASE WHEN public.tripwire('function hashtextextended') THEN 1::bigint END $$;
    CREATE FUNCTION public.name_eq(name, text) RETURNS boolean LANGUAGE sql AS $$ SELECT public.tripwire('operator =') AND $1::text = $2 $$;
    CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = text, FUNCTION = public.name_eq);
    CREATE FUNCTION public.text_eq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT public.tripwire('operator = text') AND $1 OPERATOR(pg_catalog.=) $2 $$;
    CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.text_eq);
  `);
  await tenant.query(format('ALTER ROLE %I SET search_path = public, pg_catalog', role));
}

/** Who ran the tenant's code, as the tenant's own tripwire recorded it. */
async function tripwire(database: string): Promise<{ cu: string; su: string; what: string }[]> {
  return inDatabase(database, async (c) => (await c.query('SELECT cu, su, what FROM public.tripwire_log ORDER BY at')).rows);
}

async function isSuperuser(role: string): Promise<boolean> {
  return (await t.admin.query('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [role])).rows[0]?.rolsuper === true;
}

describe('a tenant cannot turn its database against the control plane', () => {
  test('it cannot ALTER DATABASE, create schemas or extensions, or touch __SchemaVersion', async () => {
    const p = await provision('walled-in');
    const me = await connectAs(p.connectionString);
    try {
      const db = p.tenant.databaseName;
      for (const sql of [
        format('ALTER DATABASE %I SET search_path = public, pg_catalog', db),
        format('ALTER DATABASE %I WITH IS_TEMPLATE true', db),
        format('ALTER DATABASE %I WITH CONNECTION LIMIT 500', db),
        format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS false', db),
        format('ALTER DATABASE %I RENAME TO stolen', db),
        'CREATE SCHEMA evil',
        'DROP TABLE public."__SchemaVersion"',
        'ALTER TABLE public."__SchemaVersion" RENAME TO gone',
        `UPDATE public."__SchemaVersion" SET "Version" = '9.0.0'`,
        `CREATE TRIGGER t BEFORE UPDATE ON public."__SchemaVersion" FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()`,
        'CREATE EXTENSION IF NOT EXISTS citext',
        'CREATE TABLE extensions.planted (x int)',
        'DROP SCHEMA extensions CASCADE',
        'ALTER SCHEMA public OWNER TO CURRENT_USER',
      ]) {
        await assert.rejects(me.query(sql), (err: { code?: string }) => ['42501', '42P01', '3F000'].includes(err.code!) || assert.fail(`${sql}: ${err.code}`), sql);
      }
      // What it may do: its own tables, and new ones in public.
      await me.query('CREATE TABLE public.mine (id int)');
      await me.query('ALTER TABLE documents ADD COLUMN extra text');
      assert.equal((await me.query('SELECT "Version" FROM public."__SchemaVersion"')).rows[0].Version, '1.1.0');
    } finally {
      await me.end();
    }
  });

  test('its planted catalogs, functions, operators and triggers never run as the control plane: inventory, every read and every mutation', async () => {
    const p = await provision('mallory', { template: 'hostile', templateVersion: '1.0.0' });
    const { databaseName: db, roleName: role } = p.tenant;
    const me = await connectAs(p.connectionString);
    try {
      await plant(me, role);
      // Its own tables, rigged: a trigger, a rule, a check and a column default that call the tripwire.
      await me.query(`
        INSERT INTO items VALUES (1, 'a'), (2, 'b');
        CREATE FUNCTION public.on_items() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM public.tripwire('trigger on items'); RETURN NEW; END $$;
        CREATE TRIGGER rigged BEFORE INSERT OR UPDATE OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION public.on_items();
        ALTER TABLE items ADD CONSTRAINT rigged_check CHECK (public.tripwire('check on items'));
        ALTER TABLE items ALTER COLUMN note SET DEFAULT (CASE WHEN public.tripwire('default on items') THEN 'd' END);
        CREATE RULE rigged_rule AS ON UPDATE TO items DO ALSO SELECT public.tripwire('rule on items');
      `);
    } finally {
      await me.end();
    }
    await me.end().catch(() => undefined);

    // The periodic inventory, an on-demand refresh, and every read of this tenant.
    await t.app.parts.inventory.run();
    assert.deepEqual((await t.gql(`mutation { refreshTenant(input: { slug: "mallory" }) { userErrors { code } } }`)).data.refreshTenant.userErrors, []);
    const read = await t.gql(`{ tenant(slug: "mallory") {
      slug status securedAt quota { maxConnections history(first: 5) { newMaxConnections } }
      usage { current max } connections { pid } schemaVersion { version compatibility } schemaVersions { version }
      extensions { name status } live: extensions(live: true) { name installedVersion status }
      inventory { databasePresent missingTables drift } pool { status } cluster { name }
    } health { ready } }`);
    assert.equal(read.errors, undefined, JSON.stringify(read.errors));
    assert.deepEqual(read.data.tenant.live, [{ name: 'pg_trgm', installedVersion: '1.6', status: 'OK' }]);
    assert.ok(read.data.tenant.securedAt);

    // Every mutation on it.
    const mutations = [
      `mutation { updateTenantQuota(input: { slug: "mallory", maxConnections: 12, reason: "rigged" }) { userErrors { code message } } }`,
      `mutation { updateTenantExtensions(input: { slug: "mallory" }) { userErrors { code message } } }`,
      `mutation { upgradeTenantSchema(input: { slug: "mallory" }) { toVersion failedStep { message } userErrors { code message } } }`,
      `mutation { rotateTenantCredentials(input: { slug: "mallory" }) { userErrors { code message } } }`,
      `mutation { suspendTenant(input: { slug: "mallory", reason: "test" }) { userErrors { code message } } }`,
      `mutation { resumeTenant(input: { slug: "mallory" }) { userErrors { code message } } }`,
    ];
    const answers: Record<string, any> = {};
    for (const m of mutations) {
      const r = await t.gql(m);
      assert.equal(r.errors, undefined, `${m}: ${JSON.stringify(r.errors)}`);
      const [name, payload] = Object.entries(r.data)[0]! as [string, any];
      assert.deepEqual(payload.userErrors, [], `${name}: ${JSON.stringify(payload.userErrors)}`);
      answers[name] = payload;
    }
    assert.equal(answers.upgradeTenantSchema.toVersion, '1.1.0', 'the upgrade ran, as the tenant');
    await settle(t);

    assert.equal(await isSuperuser(role), false, 'the tenant role is still not a superuser');
    const ran = await tripwire(db);
    assert.ok(ran.some((r) => r.what === 'trigger on items'), 'the upgrade fired the tenant\'s trigger (as the tenant)');
    for (const r of ran) {
      assert.equal(r.cu, role, `tenant code "${r.what}" ran as ${r.cu}`);
      assert.doesNotMatch(r.what, /ESCALATED/, `tenant code "${r.what}" escalated`);
    }
    // Nothing it planted ran in a session of ours outside the upgrade (which runs as the tenant):
    // the catalogs, functions and operators it shadowed were never used by the control plane.
    assert.deepEqual(ran.filter((r) => /^(view|function|operator)/.test(r.what)), []);
    assert.equal((await inDatabase(db, (c) => c.query('SELECT count(*)::int AS n FROM items WHERE flag'))).rows[0].n, 2);

    const gone = await t.gql(`mutation { deprovisionTenant(input: { slug: "mallory", confirm: "mallory" }) { tenant { status } userErrors { code } } }`);
    assert.deepEqual(gone.data.deprovisionTenant, { tenant: { status: 'DEPROVISIONED' }, userErrors: [] });
  });

  test('a deferred constraint trigger or a held cursor cannot carry its code past the upgrade: the step is refused, nothing is committed', async () => {
    const p = await provision('sneaky', { template: 'hostile', templateVersion: '1.0.0' });
    const { databaseName: db, roleName: role } = p.tenant;
    const me = await connectAs(p.connectionString);
    try {
      await plant(me, role);
      await me.query(`
        INSERT INTO items VALUES (1, 'a');
        CREATE FUNCTION public.later() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
          SET CONSTRAINTS ALL DEFERRED;
          INSERT INTO public.tripwire_log (cu, su, what) VALUES (current_user, session_user, 'deferred');
          PERFORM public.tripwire('deferred trigger'); RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER later AFTER UPDATE ON items DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.later();
      `);
    } finally {
      await me.end();
    }
    const r = await t.gql(`mutation { upgradeTenantSchema(input: { slug: "sneaky" }) { toVersion failedStep { version message } userErrors { code } } }`);
    assert.equal(r.data.upgradeTenantSchema.toVersion, '1.0.0', 'the step was not committed');
    assert.equal(r.data.upgradeTenantSchema.failedStep.version, '1.1.0');
    assert.match(r.data.upgradeTenantSchema.failedStep.message, /deferrable constraints or constraint triggers/);
    assert.equal(await isSuperuser(role), false);
    for (const row of await tripwire(db)) assert.equal(row.cu, role, `"${row.what}" ran as ${row.cu}`);
    const cols = await inDatabase(db, (c) => c.query(`SELECT 1 FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attname = 'flag'`));
    assert.equal(cols.rowCount, 0, 'the step was rolled back');
  });
});

describe('a tenant cannot hurt other tenants or the server', () => {
  test('holding a lock on its own tables fails its own upgrade (lock_timeout), not the fleet\'s; its deprovisioning still works', async () => {
    const blocker = await provision('blocker', { template: 'hostile', templateVersion: '1.0.0' });
    await provision('bystander-a', { template: 'hostile', templateVersion: '1.0.0' });
    await provision('bystander-b', { template: 'hostile', templateVersion: '1.0.0' });
    const me = await connectAs(blocker.connectionString);
    try {
      await me.query('BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE');
      const started = await t.gql(`mutation { upgradeAllTenantSchemas(input: { template: "hostile", concurrency: 1, canarySize: 0 }) { operation { id } userErrors { code } } }`);
      const id = started.data.upgradeAllTenantSchemas.operation.id;
      const op = await until(
        async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { status failed results { tenantSlug status message } } } }`, { id })).data.node,
        (o: any) => o.status !== 'RUNNING' && o.status !== 'PENDING',
        'the operation to finish',
        60_000,
      );
      assert.equal(op.status, 'COMPLETED_WITH_ERRORS');
      const bySlug = Object.fromEntries(op.results.map((r: any) => [r.tenantSlug, r]));
      assert.equal(bySlug['blocker'].status, 'FAILED');
      assert.match(bySlug['blocker'].message, /lock/i);
      assert.equal(bySlug['bystander-a'].status, 'SUCCEEDED');
      assert.equal(bySlug['bystander-b'].status, 'SUCCEEDED');
    } finally {
      await me.end().catch(() => undefined);
    }
    const me2 = await connectAs(blocker.connectionString);
    await me2.query('BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE');
    const gone = await t.gql(`mutation { deprovisionTenant(input: { slug: "blocker", confirm: "blocker" }) { tenant { status } userErrors { code } } }`);
    assert.deepEqual(gone.data.deprovisionTenant, { tenant: { status: 'DEPROVISIONED' }, userErrors: [] });
    await me2.end().catch(() => undefined);
  });

  test('holding, in its own database, the lock Tenantry\'s step runner takes: its upgrade answers TENANT_BUSY (retry), never a masked INTERNAL_SERVER_ERROR', async () => {
    const holder = await provision('lock-holder', { template: 'hostile', templateVersion: '1.0.0' });
    const UPGRADE = `mutation { upgradeTenantSchema(input: { slug: "lock-holder" }) { toVersion userErrors { code message } } }`;
    const me = await connectAs(holder.connectionString);
    try {
      // Advisory locks need no privilege: any session of the database may take the one the step runner waits for.
      await me.query('SELECT pg_catalog.pg_advisory_lock($1::pg_catalog.int8)', [SCHEMA_MIGRATION_LOCK.toString()]);
      const r = await t.gql(UPGRADE);
      assert.equal(r.errors, undefined, JSON.stringify(r.errors));
      const errors = r.data.upgradeTenantSchema.userErrors;
      assert.deepEqual(errors.map((e: { code: string }) => e.code), ['TENANT_BUSY'], JSON.stringify(errors));
      assert.match(errors[0].message, /tenant lock-holder: a lock was not granted within LOCK_TIMEOUT_MS \(canceling statement due to lock timeout\)/);
    } finally {
      await me.end().catch(() => undefined);
    }
    // Once the tenant lets go, the same call goes through.
    const again = await t.gql(UPGRADE);
    assert.deepEqual(again.data.upgradeTenantSchema, { toVersion: '1.1.0', userErrors: [] });
  });

  test('a tenant that breaks its own database makes warnings, never a 503, in production', async () => {
    const p = await provision('vandal');
    const me = await connectAs(p.connectionString);
    try {
      await me.query('DROP TABLE documents; DROP TABLE collections');
    } finally {
      await me.end();
    }
    await t.gql(`mutation { refreshTenant(input: { slug: "vandal" }) { userErrors { code } } }`);
    const production = await startTestTenantry({ shareWith: t, env: { TEMPLATES_DIR: templates.dir, NODE_ENV: 'production' } });
    try {
      const res = await fetch(`${production.url}/health/ready`, { headers: { authorization: `Bearer ${production.adminKey}` } });
      const body = (await res.json()) as any;
      assert.equal(res.status, 200, JSON.stringify(body.reasons));
      assert.ok(body.warnings.some((w: string) => w.includes('vandal') && w.includes('table documents is missing')));
    } finally {
      await production.stop();
    }
  });
});

describe('a tenant provisioned before Tenantry owned tenant databases', () => {
  /** Puts a tenant back the way older Tenantry left it: the tenant owns its database (and so public). */
  async function makeLegacy(slug: string): Promise<{ databaseName: string; roleName: string; connectionString: string }> {
    const p = await provision(slug);
    const { databaseName: db, roleName: role } = p.tenant;
    await t.admin.query(format('ALTER DATABASE %I OWNER TO %I', db, role));
    await t.admin.query(format('ALTER DATABASE %I RESET ALL', db));
    await inDatabase(db, async (c) => {
      await c.query(format('ALTER SCHEMA public OWNER TO %I', role));
      await c.query('ALTER EXTENSION pg_trgm SET SCHEMA public');
    });
    await t.app.parts.db.tenant.update({ where: { slug }, data: { securedAt: null } });
    return { databaseName: db, roleName: role, connectionString: p.connectionString };
  }

  test('the original attack (ALTER DATABASE search_path, a pg_extension view in a schema of its own) runs nothing in the inventory; securing it takes the database back', async () => {
    const legacy = await makeLegacy('oldtimer');
    const me = await connectAs(legacy.connectionString);
    try {
      await plant(me, legacy.roleName);
      await me.query(`
        CREATE SCHEMA evil;
        CREATE VIEW evil.pg_extension AS SELECT public.tripwire('evil.pg_extension') AS hit, 'pg_trgm'::name AS extname, '9'::text AS extversion;
        GRANT USAGE ON SCHEMA evil TO PUBLIC; GRANT SELECT ON evil.pg_extension TO PUBLIC;
      `);
      await me.query(format('ALTER DATABASE %I SET search_path = evil, pg_catalog', legacy.databaseName));
    } finally {
      await me.end();
    }
    await t.app.parts.inventory.run();
    await t.gql(`{ tenant(slug: "oldtimer") { extensions(live: true) { name } } }`);
    assert.equal(await isSuperuser(legacy.roleName), false);
    for (const r of await tripwire(legacy.databaseName)) assert.equal(r.cu, legacy.roleName, `"${r.what}" ran as ${r.cu}`);

    // The fleet machinery (here started by hand; a server starts it by itself) secures it.
    const started = await t.gql(`mutation { secureAllTenants { operation { id } userErrors { code } } }`);
    const id = started.data.secureAllTenants.operation.id;
    const op = await until(
      async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { status results { tenantSlug status message } } } }`, { id })).data.node,
      (o: any) => o.status !== 'RUNNING' && o.status !== 'PENDING',
      'the securing operation',
      60_000,
    );
    const mine = op.results.find((r: any) => r.tenantSlug === 'oldtimer');
    assert.equal(mine.status, 'SUCCEEDED', mine.message);
    assert.match(mine.message, /database now belongs to the control plane/);
    const { superuser } = await t.app.parts.clusters.defaultCluster.identity();
    // A superuser control plane moves the extension out of public; a least-privilege one cannot (its objects are the bootstrap superuser's) and says so.
    assert.match(mine.message, superuser ? /extension pg_trgm moved from public to extensions/ : /extension pg_trgm stays in schema public: moving it needs a superuser/);

    const controlPlane = (await t.app.parts.clusters.defaultCluster.identity()).role;
    const owner = await t.admin.query(
      `SELECT pg_get_userbyid(datdba) AS owner, (SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0) AS settings FROM pg_database d WHERE datname = $1`,
      [legacy.databaseName],
    );
    assert.deepEqual(owner.rows[0], { owner: controlPlane, settings: ['search_path="$user", public, extensions'] }, 'the tenant\'s settings are gone');
    // (Its role's own search_path, set by plant(), would hide the database default.)
    await t.admin.query(format('ALTER ROLE %I RESET search_path', legacy.roleName));
    const again = await connectAs(legacy.connectionString);
    try {
      await assert.rejects(again.query(format('ALTER DATABASE %I SET search_path = evil, pg_catalog', legacy.databaseName)), { code: '42501' });
      assert.equal((await again.query(`SELECT similarity('abc', 'abd') > 0 AS ok`)).rows[0].ok, true, 'its queries still find the extension');
    } finally {
      await again.end();
    }
    const audit = await t.gql(`{ auditEvents(first: 1, filter: { tenantSlug: "oldtimer", action: "tenant.secured" }) { edges { node { action } } } }`);
    assert.equal(audit.data.auditEvents.edges.length, 1);
  });

  test('one that replaced __SchemaVersion with a view fails its own step only, and its view never runs', async () => {
    const legacy = await makeLegacy('forger');
    const fine = await makeLegacy('honest-old');
    const me = await connectAs(legacy.connectionString);
    try {
      await plant(me, legacy.roleName);
      await me.query(`DROP TABLE public."__SchemaVersion";
        CREATE VIEW public."__SchemaVersion" AS SELECT 'Tenant'::text AS "Component", '9.0.0'::text AS "Version", now() AS "AppliedAt", 'x'::text AS "AppliedBy", 'x'::text AS "Description" WHERE public.tripwire('forged __SchemaVersion')`);
    } finally {
      await me.end();
    }
    await t.app.parts.inventory.run();
    const inv = await t.gql(`{ tenant(slug: "forger") { schemaVersion { version } inventory { drift missingTables error } } }`);
    assert.equal(inv.data.tenant.schemaVersion.version, '1.1.0', 'the forged version is not believed');
    const controlPlane = await t.app.parts.clusters.defaultCluster.identity();
    if (!controlPlane.superuser && controlPlane.serverVersionNum >= 160000) {
      // A least-privilege control plane on 16+ holds tenant roles without inheriting them: it
      // cannot enter a database the tenant owns until the database is taken back, and says so.
      assert.match(inv.data.tenant.inventory.error ?? '', /permission denied/, JSON.stringify(inv.data.tenant.inventory));
    } else {
      assert.ok(inv.data.tenant.inventory.drift.some((d: string) => /__SchemaVersion is not a table/.test(d)), JSON.stringify(inv.data.tenant.inventory));
    }

    const started = await t.gql(`mutation { secureAllTenants { operation { id } } }`);
    const id = started.data.secureAllTenants.operation.id;
    const op = await until(
      async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { status results { tenantSlug status message } } } }`, { id })).data.node,
      (o: any) => o.status !== 'RUNNING' && o.status !== 'PENDING',
      'the securing operation',
      60_000,
    );
    assert.equal(op.status, 'COMPLETED_WITH_ERRORS');
    const bySlug = Object.fromEntries(op.results.map((r: any) => [r.tenantSlug, r]));
    assert.equal(bySlug['forger'].status, 'FAILED');
    assert.match(bySlug['forger'].message, /__SchemaVersion is not a table/);
    assert.equal(bySlug['honest-old'].status, 'SUCCEEDED');
    assert.deepEqual(await tripwire(legacy.databaseName).then((rows) => rows.filter((r) => r.cu !== legacy.roleName)), []);
    assert.equal(await isSuperuser(legacy.roleName), false);
    assert.ok(fine.databaseName);
  });
});
