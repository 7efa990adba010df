import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import format from 'pg-format';
import { withDatabase } from '../src/platform/db/connection-url.js';
import type { ProvisionStep } from '../src/modules/provisioning/provisioning-steps.js';
import { connectAs, DEPROVISION, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

let t: TestTenantry;
let failAt: { step: ProvisionStep; slug: string } | null = null;
/** For one slug: the sessions in its database seen before each step (pid and application). */
let watch: { slug: string; seen: Record<string, { pid: number; app: string }[]> } | null = null;

before(async () => {
  t = await startTestTenantry({
    failpoints: {
      'provision.before:*': ({ point, tenantSlug }) => {
        const step = point.slice('provision.before:'.length);
        if (failAt && failAt.step === step && failAt.slug === tenantSlug) throw new Error(`injected failure before ${step}`);
        if (watch && watch.slug === tenantSlug) {
          const w = watch;
          // Client sessions only: an autovacuum worker may visit the new database at any moment.
          return t.admin
            .query<{ pid: number; app: string }>(`SELECT pid, application_name AS app FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' ORDER BY pid`, [`${t.prefix}${tenantSlug.replace(/-/g, '_')}`])
            .then(({ rows }) => void (w.seen[step] = rows));
        }
      },
    },
  });
});
after(() => t.cleanup());

const provision = (input: Record<string, unknown>, key?: string) => t.gql(PROVISION, { input }, key).then((r) => {
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  return r.data.provisionTenant;
});
const objectsNamed = async (name: string) => {
  const db = await t.admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  const role = await t.admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
  return { database: db.rowCount === 1, role: role.rowCount === 1 };
};

describe('provisionTenant', () => {
  test('ACCESS and SCHEMA_VERSION share one session in the new database, which is ended before the answer', async () => {
    watch = { slug: 'one-session', seen: {} };
    try {
      const p = await provision({ slug: 'one-session', displayName: 'One session' });
      assert.deepEqual(p.userErrors, []);
      const { seen } = watch;
      assert.deepEqual(seen.ACCESS, [], 'nobody is in the database before ACCESS');
      assert.equal(seen.SCHEMA_VERSION?.length, 1, JSON.stringify(seen));
      assert.equal(seen.SCHEMA_VERSION[0]!.app, 'tenantry-admin');
      assert.deepEqual(seen.CREDENTIALS, seen.SCHEMA_VERSION, 'SCHEMA_VERSION used the session ACCESS opened');
      const left = await t.admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [seen.SCHEMA_VERSION[0]!.pid]);
      assert.equal(left.rowCount, 0, 'the session ended with provisioning');
      const r = await t.gql(`{ tenant(slug: "one-session") { schemaVersion { version } extensions { name installedVersion } } }`);
      assert.equal(r.data.tenant.schemaVersion.version, '1.1.0', 'the stamp is recorded with its step');
      const trgm = r.data.tenant.extensions.find((e: { name: string }) => e.name === 'pg_trgm');
      assert.match(trgm?.installedVersion ?? '', /^1\.\d+$/, 'the installed extensions are recorded with the step: ' + JSON.stringify(r.data.tenant.extensions));
    } finally {
      watch = null;
    }
  });

  test('creates the role, database, extensions, tables and version row, checked from the server itself', async () => {
    const p = await provision({ slug: 'acme-dev', displayName: 'Acme (dev)', maxConnections: 12 });
    assert.deepEqual(p.userErrors, []);
    const name = `${t.prefix}acme_dev`;
    assert.equal(p.tenant.status, 'ACTIVE');
    assert.equal(p.tenant.databaseName, name);
    assert.equal(p.tenant.roleName, name);
    assert.equal(p.tenant.quota.maxConnections, 12);
    assert.match(p.connectionString, new RegExp(`^postgresql://${name}:[A-Za-z0-9_-]{32}@[^/]+/${name}$`));
    assert.equal(p.pooledConnectionString, null);

    const role = await t.admin.query('SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolconnlimit FROM pg_roles WHERE rolname = $1', [name]);
    assert.deepEqual(role.rows[0], { rolcanlogin: true, rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolconnlimit: 12 });

    const db = await t.admin.query(
      `SELECT pg_get_userbyid(datdba) AS owner, datconnlimit,
              EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public_connect,
              datacl IS NULL AS default_acl
       FROM pg_database WHERE datname = $1`,
      [name],
    );
    // The control plane owns the database (the tenant cannot ALTER DATABASE it); it allows the
    // quota plus the control plane's reserve (3 by default).
    const controlPlane = (await t.app.parts.clusters.defaultCluster.identity()).role;
    assert.deepEqual(db.rows[0], { owner: controlPlane, datconnlimit: 15, public_connect: false, default_acl: false });

    const inside = await import('pg').then(({ default: pg }) => new pg.Client({ connectionString: withDatabase(process.env.TEST_DATABASE_URL!, name) }));
    await inside.connect();
    try {
      const ext = await inside.query(`SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE extname = 'pg_trgm'`);
      assert.deepEqual(ext.rows, [{ extname: 'pg_trgm', nspname: 'extensions' }], 'extensions live in a schema only the control plane can create in');
      const tables = await inside.query(`SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
      assert.deepEqual(tables.rows, [
        { tablename: '__SchemaVersion', tableowner: controlPlane },
        { tablename: 'collections', tableowner: name },
        { tablename: 'documents', tableowner: name },
      ]);
      const gin = await inside.query(`SELECT indexdef FROM pg_indexes WHERE tablename = 'documents' AND indexdef LIKE '%USING gin (content)%'`);
      assert.equal(gin.rowCount, 1);
      const version = await inside.query(`SELECT "Component", "Version", "AppliedBy", "Description" FROM "__SchemaVersion"`);
      // Who applied it: the key's name and id (never key text).
      const adminKey = await t.app.parts.db.apiKey.findFirstOrThrow({ where: { name: 'ADMIN_API_KEY' } });
      assert.deepEqual(version.rows, [{ Component: 'Tenant', Version: '1.1.0', AppliedBy: `ADMIN_API_KEY (apikey:${adminKey.id})`, Description: 'provisioned from template default 1.1.0' }]);
      const deleted = await inside.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_documents_deleted_at'`);
      assert.equal(deleted.rowCount, 1, 'the newest version (1.1.0) is the default');
    } finally {
      await inside.end();
    }

    const audit = await t.gql(`{ auditEvents(first: 10, filter: { tenantSlug: "acme-dev" }) { edges { node { action actor subject correlationId metadata } } } }`);
    const actions = audit.data.auditEvents.edges.map((e: any) => e.node.action);
    assert.deepEqual(actions, ['tenant.provisioned', 'tenant.provision.started']);
    assert.deepEqual(audit.data.auditEvents.edges[0].node.metadata, { databaseName: name, roleName: name, maxConnections: 12, template: 'default', templateVersion: '1.1.0' });

    // The returned connection string works, as the tenant, who owns its tables.
    const tenant = await connectAs(p.connectionString);
    try {
      const me = await tenant.query('SELECT current_user AS u, current_database() AS d');
      assert.deepEqual(me.rows[0], { u: name, d: name });
      await tenant.query(`INSERT INTO collections (id, name) VALUES ('c1', 'notes')`);
      await tenant.query(`INSERT INTO documents (id, collection_id, content, etag) VALUES ('d1', 'c1', '{"title": "hello"}', 'e1')`);
      await tenant.query('ALTER TABLE documents ADD COLUMN tenant_owned boolean');
      await assert.rejects(tenant.query(`UPDATE "__SchemaVersion" SET "Version" = '9.9.9'`), { code: '42501' });
    } finally {
      await tenant.end();
    }
  });

  test("a tenant's role cannot open another tenant's database, nor the control database", async () => {
    const a = await provision({ slug: 'tenant-a', displayName: 'A' });
    const b = await provision({ slug: 'tenant-b', displayName: 'B' });
    const aIntoB = a.connectionString.replace(/\/[^/]+$/, `/${b.tenant.databaseName}`);
    await assert.rejects(connectAs(aIntoB), { code: '42501' });
    const aIntoControl = a.connectionString.replace(/\/[^/]+$/, `/${t.controlDatabase}`);
    await assert.rejects(connectAs(aIntoControl), { code: '42501' });
  });

  test('invalid, too long and hostile slugs get INVALID_SLUG and create nothing', async () => {
    // Only this file's objects: other files run in parallel on the same server.
    const ours = () =>
      t.admin.query(
        `SELECT (SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)) + (SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)) AS n`,
        [t.prefix],
      );
    const before = await ours();
    const bad = [
      'acme"; drop database postgres; --',
      "a'b",
      '\u0430cme', // Cyrillic "а"
      '\uff41cme', // fullwidth "ａ"
      'acme\u200bdev', // zero-width space
      'ACME',
      'a',
      'x'.repeat(41),
      '-acme',
      '.acme',
      'acme dev',
      'acme/dev',
      'acme\n',
      '',
    ];
    for (const slug of bad) {
      const p = await provision({ slug, displayName: 'Bad' });
      assert.deepEqual(p.userErrors.map((e: any) => [e.code, e.field]), [['INVALID_SLUG', 'slug']], `slug ${JSON.stringify(slug)}`);
      assert.equal(p.tenant, null);
    }
    const after = await ours();
    assert.equal(after.rows[0].n, before.rows[0].n);
    const rows = await t.gql(`{ tenants(first: 50, filter: { status: [PROVISIONING, FAILED, ACTIVE] }) { edges { node { slug } } } }`);
    assert.ok(rows.data.tenants.edges.every((e: any) => !bad.includes(e.node.slug)));
  });

  test('accepts the edges of the slug rules', async () => {
    const p = await provision({ slug: `9${'z'.repeat(39)}`, displayName: 'Forty characters' });
    assert.deepEqual(p.userErrors, []);
    assert.equal(p.tenant.databaseName, `${t.prefix}9${'z'.repeat(39)}`);
  });

  test('out-of-range quota and unknown template are refused before anything is created', async () => {
    const low = await provision({ slug: 'quota-low', displayName: 'Q', maxConnections: 1 });
    assert.equal(low.userErrors[0].code, 'QUOTA_OUT_OF_RANGE');
    const tpl = await provision({ slug: 'no-template', displayName: 'T', template: 'nope' });
    assert.equal(tpl.userErrors[0].code, 'TEMPLATE_NOT_FOUND');
    assert.deepEqual(await objectsNamed(`${t.prefix}quota_low`), { database: false, role: false });
  });

  test('slugs that map to the same database name collide; so do objects Tenantry does not manage', async () => {
    await provision({ slug: 'globex-dev', displayName: 'Globex' });
    const second = await provision({ slug: 'globex.dev', displayName: 'Globex too' });
    assert.deepEqual(second.userErrors.map((e: any) => e.code), ['NAME_COLLISION']);
    assert.equal(second.tenant, null);

    await t.admin.query(format('CREATE DATABASE %I', `${t.prefix}foreign`));
    const foreign = await provision({ slug: 'foreign', displayName: 'Not ours' });
    assert.deepEqual(foreign.userErrors.map((e: any) => e.code), ['NAME_COLLISION']);
    const stillThere = await t.admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${t.prefix}foreign`]);
    assert.equal(stillThere.rowCount, 1, 'a colliding foreign database is never touched');
  });

  test('the same request twice returns the existing tenant; a different one is SLUG_TAKEN', async () => {
    const first = await provision({ slug: 'initech', displayName: 'Initech', maxConnections: 20 });
    const again = await provision({ slug: 'initech', displayName: 'Initech', maxConnections: 20 });
    assert.deepEqual(again.userErrors, []);
    assert.equal(again.tenant.id, first.tenant.id);
    assert.equal(again.connectionString, null, 'credentials are shown once');
    const other = await provision({ slug: 'initech', displayName: 'Initrode' });
    assert.deepEqual(other.userErrors.map((e: any) => e.code), ['SLUG_TAKEN']);
  });

  test('two servers provisioning one slug at once make one database', async () => {
    const second = await startTestTenantry({ shareWith: t });
    try {
      const input = { slug: 'umbrella', displayName: 'Umbrella' };
      const [x, y] = await Promise.all([
        t.gql(PROVISION, { input }).then((r) => r.data.provisionTenant),
        second.gql(PROVISION, { input }).then((r) => r.data.provisionTenant),
      ]);
      assert.deepEqual([x.userErrors, y.userErrors], [[], []]);
      assert.equal(x.tenant.id, y.tenant.id);
      assert.equal([x.connectionString, y.connectionString].filter(Boolean).length, 1, 'exactly one call set the credentials');
      const dbs = await t.admin.query('SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [`${t.prefix}umbrella`]);
      assert.equal(dbs.rows[0].n, 1);
      const started = await t.gql(`{ auditEvents(first: 20, filter: { tenantSlug: "umbrella", action: "tenant.provision.started" }) { edges { node { id } } } }`);
      assert.equal(started.data.auditEvents.edges.length, 1);
    } finally {
      await second.stop();
    }
  });

  test('a failure half-way leaves no database or role, records the step, and a retry completes it', async () => {
    failAt = { step: 'ACCESS', slug: 'hooli' };
    const failed = await provision({ slug: 'hooli', displayName: 'Hooli' });
    failAt = null;
    assert.deepEqual(failed.userErrors.map((e: any) => e.code), ['PROVISIONING_FAILED']);
    assert.match(failed.userErrors[0].message, /failed at step ACCESS/);
    assert.equal(failed.tenant.status, 'FAILED');
    assert.deepEqual(failed.tenant.provisioning, { lastCompletedStep: null, failedStep: 'ACCESS', error: 'injected failure before ACCESS' });
    assert.equal(failed.connectionString, null);
    assert.deepEqual(await objectsNamed(`${t.prefix}hooli`), { database: false, role: false });
    assert.ok(t.logs.some((l) => l.includes('provisioning failed') && l.includes('injected failure before ACCESS')));

    const retried = await provision({ slug: 'hooli', displayName: 'Hooli' });
    assert.deepEqual(retried.userErrors, []);
    assert.equal(retried.tenant.status, 'ACTIVE');
    assert.equal(retried.tenant.id, failed.tenant.id);
    const client = await connectAs(retried.connectionString);
    await client.end();

    const audit = await t.gql(`{ auditEvents(first: 10, filter: { tenantSlug: "hooli" }) { edges { node { action metadata } } } }`);
    assert.deepEqual(audit.data.auditEvents.edges.map((e: any) => e.node.action), [
      'tenant.provisioned',
      'tenant.provision.resumed',
      'tenant.provision.failed',
      'tenant.provision.started',
    ]);
  });

  test('a failure in the very last step still leaves nothing behind', async () => {
    failAt = { step: 'CREDENTIALS', slug: 'pied-piper' };
    const failed = await provision({ slug: 'pied-piper', displayName: 'Pied Piper' });
    failAt = null;
    assert.equal(failed.tenant.status, 'FAILED');
    assert.deepEqual(await objectsNamed(`${t.prefix}pied_piper`), { database: false, role: false });
  });
});

describe('deprovisionTenant', () => {
  test('refuses a wrong confirmation, then drops database and role, ends sessions, keeps row and trail', async () => {
    const p = await provision({ slug: 'soylent', displayName: 'Soylent' });
    const name = p.tenant.databaseName;
    const wrong = await t.gql(DEPROVISION, { input: { slug: 'soylent', confirm: 'soylent-corp' } });
    assert.deepEqual(wrong.data.deprovisionTenant.userErrors.map((e: any) => [e.code, e.field]), [['CONFIRMATION_MISMATCH', 'confirm']]);
    assert.deepEqual(await objectsNamed(name), { database: true, role: true });

    const session = await connectAs(p.connectionString);
    const ended = new Promise((resolve) => session.on('error', resolve));
    const right = await t.gql(DEPROVISION, { input: { slug: 'soylent', confirm: 'soylent' } });
    assert.deepEqual(right.data.deprovisionTenant.userErrors, []);
    assert.equal(right.data.deprovisionTenant.tenant.status, 'DEPROVISIONED');
    await ended;
    await assert.rejects(session.query('SELECT 1'));
    assert.deepEqual(await objectsNamed(name), { database: false, role: false });

    const kept = await t.gql(`{ tenant(slug: "soylent") { status deprovisionedAt quota { maxConnections } auditEvents(first: 5) { edges { node { action } } } } }`);
    assert.equal(kept.data.tenant.status, 'DEPROVISIONED');
    assert.ok(kept.data.tenant.deprovisionedAt);
    assert.deepEqual(kept.data.tenant.auditEvents.edges.slice(0, 2).map((e: any) => e.node.action), ['tenant.deprovisioned', 'tenant.deprovision.started']);
  });

  test('an unknown tenant is NOT_FOUND; a deprovisioned slug can be provisioned again', async () => {
    const missing = await t.gql(DEPROVISION, { input: { slug: 'nobody', confirm: 'nobody' } });
    assert.deepEqual(missing.data.deprovisionTenant.userErrors.map((e: any) => e.code), ['NOT_FOUND']);

    const again = await provision({ slug: 'soylent', displayName: 'Soylent' });
    assert.deepEqual(again.userErrors, []);
    assert.equal(again.tenant.status, 'ACTIVE');
    const client = await connectAs(again.connectionString);
    await client.end();
  });
});
