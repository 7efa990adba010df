// @test-slow: started first (scripts/run-tests.ts)
// Issue 14 (critical): the function that runs template steps as the tenant lives in the control
// plane's session. A tenant's trigger, rule, default, check or index expression, fired by a data
// step of an upgrade, could replace it (CREATE OR REPLACE without SECURITY DEFINER, ALTER FUNCTION
// ... SECURITY INVOKER, DROP and CREATE) so that the NEXT step of the same upgrade ran the
// tenant's code as the control plane: a superuser control plane made the tenant superuser; a
// least-privilege one on PostgreSQL 15 (CREATEROLE there grants any predefined role) gave it
// pg_execute_server_program and pg_read_all_data. Every way in is planted here, for the single
// upgrade and for the fleet upgrade; the runner is checked before every call and after every
// step, so none of them gets anything but its own step refused.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import format from 'pg-format';
import { connectAs, PROVISION, settle, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { inDatabase, TestTemplates } from './support/templates.js';
import { until } from './support/subscriptions.js';

let t: TestTenantry;
let templates: TestTemplates;

/** Three versions: 1.1.0 changes and adds rows (the tenant's objects fire), 1.2.0 runs after it in the same upgrade. */
const STEPS = {
  '1.0.0': `CREATE TABLE documents (id int PRIMARY KEY, etag text, row_version int NOT NULL DEFAULT 0);`,
  '1.1.0': `ALTER TABLE documents ADD COLUMN deleted_at timestamptz;
UPDATE documents SET row_version = row_version;
INSERT INTO documents (id) VALUES (1000);`,
  '1.2.0': `CREATE INDEX documents_etag_idx ON documents (etag);`,
};
const manifest = { description: 'steps', tables: ['documents'], extensions: { required: [] } };

before(async () => {
  templates = await TestTemplates.create();
  for (const [version, sql] of Object.entries(STEPS)) await templates.add('stepped', version, manifest, sql);
  t = await startTestTenantry({ env: { TEMPLATES_DIR: templates.dir } });
});
after(async () => {
  await t.cleanup();
  await templates.remove();
});

async function provision(slug: string) {
  const r = (await t.gql(PROVISION, { input: { slug, displayName: slug, template: 'stepped', templateVersion: '1.0.0' } })).data.provisionTenant;
  assert.deepEqual(r.userErrors, []);
  return r as { tenant: { databaseName: string; roleName: string }; connectionString: string };
}

/** What the tenant's code does to the step runner once it runs inside the control plane's session. */
const TAMPERING = {
  'CREATE OR REPLACE': `FOR f IN SELECT p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args FROM pg_catalog.pg_proc p WHERE p.pronamespace = pg_catalog.pg_my_temp_schema() LOOP
      EXECUTE pg_catalog.format('CREATE OR REPLACE FUNCTION pg_temp.%I(%s) RETURNS void LANGUAGE plpgsql AS %L', f.proname, f.args,
        'BEGIN PERFORM public.escalate(''replaced runner''); PERFORM pg_catalog.set_config(''search_path'', ''public'', true); EXECUTE $1; END');
    END LOOP;`,
  'SECURITY INVOKER': `FOR f IN SELECT p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args FROM pg_catalog.pg_proc p WHERE p.pronamespace = pg_catalog.pg_my_temp_schema() LOOP
      EXECUTE pg_catalog.format('ALTER FUNCTION pg_temp.%I(%s) SECURITY INVOKER', f.proname, f.args);
    END LOOP;`,
  'DROP and CREATE': `FOR f IN SELECT p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args FROM pg_catalog.pg_proc p WHERE p.pronamespace = pg_catalog.pg_my_temp_schema() LOOP
      EXECUTE pg_catalog.format('DROP FUNCTION pg_temp.%I(%s)', f.proname, f.args);
      EXECUTE pg_catalog.format('CREATE FUNCTION pg_temp.%I(%s) RETURNS void LANGUAGE plpgsql AS %L', f.proname, f.args,
        'BEGIN PERFORM public.escalate(''recreated runner''); PERFORM pg_catalog.set_config(''search_path'', ''public'', true); EXECUTE $1; END');
    END LOOP;`,
} as const;

/** The objects a step can fire, each calling public.hijack() (which tampers with the runner). */
const FIRED_BY = {
  'row trigger': `CREATE FUNCTION public.on_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM public.hijack('row trigger'); RETURN NEW; END $$;
    CREATE TRIGGER rigged BEFORE UPDATE ON documents FOR EACH ROW EXECUTE FUNCTION public.on_row();`,
  'statement trigger': `CREATE FUNCTION public.on_statement() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM public.hijack('statement trigger'); RETURN NULL; END $$;
    CREATE TRIGGER rigged AFTER INSERT ON documents FOR EACH STATEMENT EXECUTE FUNCTION public.on_statement();`,
  rule: `CREATE RULE rigged AS ON UPDATE TO documents DO ALSO SELECT public.hijack('rule');`,
  default: `ALTER TABLE documents ALTER COLUMN etag SET DEFAULT (CASE WHEN public.hijack('default') THEN 'd' END);`,
  'check constraint': `ALTER TABLE documents ADD CONSTRAINT rigged CHECK (public.hijack('check constraint'));`,
  'index expression': `CREATE FUNCTION public.hijack_fixed(what text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT public.hijack(what) $$;
    CREATE INDEX rigged ON documents ((public.hijack_fixed('index expression') AND id > 0));`,
} as const;

/**
 * Plants, as the tenant: escalate() records who ran it and tries every escalation a control
 * plane's role could grant (superuser; on PostgreSQL 15, CREATEROLE grants predefined roles);
 * hijack() records, tries to escalate, and tampers with every function in the session's
 * temporary schema (in the control plane's session: the step runner).
 */
async function plant(me: pg.Client, role: string, tampering: string, firedBy: string): Promise<void> {
  await me.query(`
    CREATE TABLE public.tripwire_log (cu text, su text, what text, at timestamptz DEFAULT clock_timestamp());
    GRANT ALL ON public.tripwire_log TO PUBLIC;
    CREATE FUNCTION public.escalate(what text) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO public.tripwire_log (cu, su, what) VALUES (current_user, session_user, what);
      BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', ${format('%L', role)}); EXCEPTION WHEN others THEN NULL; END;
      BEGIN EXECUTE pg_catalog.format('GRANT pg_execute_server_program, pg_read_all_data TO %I', ${format('%L', role)}); EXCEPTION WHEN others THEN NULL; END;
      RETURN true;
    END $$;
    GRANT EXECUTE ON FUNCTION public.escalate(text) TO PUBLIC;
    -- Sequences are not transactional: the count survives the rollback of a refused step.
    CREATE SEQUENCE public.fired;
    GRANT ALL ON SEQUENCE public.fired TO PUBLIC;
    CREATE FUNCTION public.hijack(what text) RETURNS boolean LANGUAGE plpgsql AS $$
    DECLARE f record;
    BEGIN
      PERFORM pg_catalog.nextval('public.fired');
      PERFORM public.escalate(what);
      BEGIN
        ${tampering}
      EXCEPTION WHEN others THEN INSERT INTO public.tripwire_log (cu, su, what) VALUES (current_user, session_user, what || ': tampering failed: ' || SQLERRM);
      END;
      RETURN true;
    END $$;
    GRANT EXECUTE ON FUNCTION public.hijack(text) TO PUBLIC;
    INSERT INTO documents (id, etag) VALUES (1, 'a'), (2, 'b');
  `);
  await me.query(firedBy);
}

/** What the tenant's role may do after the upgrade: it must be exactly what it was given. */
async function privilegesOf(role: string): Promise<{ superuser: boolean; memberOf: string[] }> {
  const { rows } = await t.admin.query(
    `SELECT r.rolsuper AS superuser, coalesce(array_agg(g.rolname::text ORDER BY g.rolname) FILTER (WHERE g.rolname IS NOT NULL), '{}'::text[]) AS "memberOf"
     FROM pg_roles r LEFT JOIN pg_auth_members m ON m.member = r.oid LEFT JOIN pg_roles g ON g.oid = m.roleid
     WHERE r.rolname = $1 GROUP BY r.rolsuper`,
    [role],
  );
  return rows[0];
}

async function ranAsOthers(db: string, role: string): Promise<{ cu: string; what: string }[]> {
  const { rows } = await inDatabase(db, (c) => c.query('SELECT cu, what FROM public.tripwire_log ORDER BY at'));
  if (process.env.SHOW_TRIPWIRE) console.log(rows);
  return rows.filter((r: { cu: string }) => r.cu !== role);
}

async function assertUnharmed(p: { tenant: { databaseName: string; roleName: string } }, label: string): Promise<void> {
  const { databaseName: db, roleName: role } = p.tenant;
  assert.deepEqual(await privilegesOf(role), { superuser: false, memberOf: [] }, `${label}: the tenant's role gained nothing`);
  assert.deepEqual(await ranAsOthers(db, role), [], `${label}: nothing of the tenant's ran as anyone else`);
  const fired = await inDatabase(db, (c) => c.query('SELECT is_called FROM public.fired'));
  assert.equal(fired.rows[0].is_called, true, `${label}: the planted object fired during the upgrade`);
}

let n = 0;
describe('a tenant cannot take over the step runner of a multi-step upgrade', () => {
  for (const [how, tampering] of Object.entries(TAMPERING)) {
    for (const [what, firedBy] of Object.entries(FIRED_BY)) {
      test(`${what} that does ${how} during upgradeTenantSchema`, async () => {
        const slug = `h${++n}`;
        const p = await provision(slug);
        const me = await connectAs(p.connectionString);
        try {
          await plant(me, p.tenant.roleName, tampering, firedBy);
        } finally {
          await me.end();
        }
        const r = await t.gql(`mutation { upgradeTenantSchema(input: { slug: "${slug}", targetVersion: "1.2.0" }) {
          toVersion appliedVersions failedStep { version message } userErrors { code message } } }`);
        assert.equal(r.errors, undefined, JSON.stringify(r.errors));
        const u = r.data.upgradeTenantSchema;
        await assertUnharmed(p, `${what} / ${how}`);
        // The step that tampered with the runner is refused and rolled back; the tenant stays where it was.
        assert.equal(u.failedStep?.version, '1.1.0', JSON.stringify(u));
        assert.match(u.failedStep.message, /step runner/);
        assert.deepEqual(u.userErrors.map((e: { code: string }) => e.code), ['UPGRADE_FAILED']);
        assert.equal(u.toVersion, '1.0.0');
        const cols = await inDatabase(p.tenant.databaseName, (c) => c.query(`SELECT 1 FROM pg_attribute WHERE attrelid = 'public.documents'::regclass AND attname = 'deleted_at'`));
        assert.equal(cols.rowCount, 0, 'the tampering step was rolled back');
        const audit = await t.gql(`{ auditEvents(first: 1, filter: { tenantSlug: "${slug}", action: "tenant.schema.upgrade.failed" }) { edges { node { subject } } } }`);
        assert.equal(audit.data.auditEvents.edges[0]?.node.subject, '1.1.0');
      });
    }
  }

  test('the fleet upgrade: a tampering tenant fails alone, the others reach 1.2.0', async () => {
    const hostile = await provision('fleet-hostile');
    const me = await connectAs(hostile.connectionString);
    try {
      await plant(me, hostile.tenant.roleName, TAMPERING['CREATE OR REPLACE'], FIRED_BY['row trigger']);
    } finally {
      await me.end();
    }
    const honest = await provision('fleet-honest');
    await inDatabase(honest.tenant.databaseName, (c) => c.query(`INSERT INTO documents (id, etag) VALUES (1, 'a')`));
    const started = await t.gql(`mutation { upgradeAllTenantSchemas(input: { template: "stepped", targetVersion: "1.2.0", concurrency: 2, canarySize: 0 }) { operation { id } userErrors { code message } } }`);
    assert.deepEqual(started.data.upgradeAllTenantSchemas.userErrors, []);
    const id = started.data.upgradeAllTenantSchemas.operation.id;
    const op = await until(
      async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { status results { tenantSlug status message } } } }`, { id })).data.node,
      (o: any) => o.status !== 'RUNNING' && o.status !== 'PENDING',
      'the operation to finish',
      60_000,
    );
    const bySlug = Object.fromEntries(op.results.map((r: any) => [r.tenantSlug, r]));
    assert.equal(bySlug['fleet-hostile'].status, 'FAILED');
    assert.match(bySlug['fleet-hostile'].message, /step runner/);
    assert.equal(bySlug['fleet-honest'].status, 'SUCCEEDED', bySlug['fleet-honest'].message);
    await settle(t);
    await assertUnharmed(hostile, 'fleet upgrade');
    const honestVersion = await inDatabase(honest.tenant.databaseName, (c) => c.query(`SELECT "Version" FROM public."__SchemaVersion"`));
    assert.equal(honestVersion.rows[0].Version, '1.2.0');
  });
});
