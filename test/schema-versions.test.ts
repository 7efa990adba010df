import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { controlPlaneUrl, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { inDatabase, TestTemplates, downgradeTrgm } from './support/templates.js';

let t: TestTenantry;
let templates: TestTemplates;
const inTenant = inDatabase;

const plain = { description: 'step', extensions: { required: [] } };

before(async () => {
  templates = await TestTemplates.create();
  const addTemplate = templates.add.bind(templates);
  await addTemplate('fragile', '1.0.0', plain, 'CREATE TABLE notes (id int PRIMARY KEY, body text);');
  await addTemplate('fragile', '1.1.0', plain, 'ALTER TABLE notes ADD COLUMN title text;');
  await addTemplate('fragile', '1.2.0', plain, 'ALTER TABLE notes ADD COLUMN extra int;\nSELECT 1 / 0;');
  t = await startTestTenantry({ env: { TEMPLATES_DIR: templates.dir } });
});
after(async () => {
  await t.cleanup();
  await templates.remove();
});

const provision = async (input: Record<string, unknown>) => {
  const r = await t.gql(PROVISION, { input });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  return r.data.provisionTenant.tenant as { id: string; databaseName: string };
};
const UPGRADE = `mutation($input: UpgradeTenantSchemaInput!) { upgradeTenantSchema(input: $input) {
  fromVersion toVersion appliedVersions failedStep { version message }
  tenant { schemaVersion { version expectedVersion compatibility appliedBy } }
  userErrors { code field message } } }`;

describe('upgradeTenantSchema', () => {
  test('a tenant provisioned at 1.0.0 upgrades to 1.1.0: column, index, version row, audit event', async () => {
    const tenant = await provision({ slug: 'old-timer', displayName: 'o', templateVersion: '1.0.0' });
    const before = await t.gql(`{ tenant(slug: "old-timer") { schemaVersion { version expectedVersion compatibility } } }`);
    assert.deepEqual(before.data.tenant.schemaVersion, { version: '1.0.0', expectedVersion: '1.1.0', compatibility: 'UPGRADE_AVAILABLE' });
    await inTenant(tenant.databaseName, (c) => c.query(`INSERT INTO collections (id, name) VALUES ('c', 'kept'); INSERT INTO documents (id, collection_id, content, etag) VALUES ('d', 'c', '{}', 'e')`));

    const r = (await t.gql(UPGRADE, { input: { slug: 'old-timer' } })).data.upgradeTenantSchema;
    assert.deepEqual(r.userErrors, []);
    assert.deepEqual([r.fromVersion, r.toVersion, r.appliedVersions, r.failedStep], ['1.0.0', '1.1.0', ['1.1.0'], null]);
    const adminKey = await t.app.parts.db.apiKey.findFirstOrThrow({ where: { name: 'ADMIN_API_KEY' } });
    assert.deepEqual(r.tenant.schemaVersion, { version: '1.1.0', expectedVersion: '1.1.0', compatibility: 'COMPATIBLE', appliedBy: `ADMIN_API_KEY (apikey:${adminKey.id})` });

    await inTenant(tenant.databaseName, async (c) => {
      const column = await c.query(`SELECT data_type FROM information_schema.columns WHERE table_name = 'documents' AND column_name = 'deleted_at'`);
      assert.equal(column.rows[0]?.data_type, 'timestamp with time zone');
      assert.equal((await c.query(`SELECT 1 FROM pg_indexes WHERE indexname = 'idx_documents_deleted_at'`)).rowCount, 1);
      assert.equal((await c.query(`SELECT "Version" FROM "__SchemaVersion"`)).rows[0].Version, '1.1.0');
      assert.equal((await c.query(`SELECT count(*)::int AS n FROM documents`)).rows[0].n, 1, 'data is untouched');
    });
    const audit = await t.gql(`{ auditEvents(first: 1, filter: { tenantSlug: "old-timer", action: "tenant.schema.upgraded" }) { edges { node { subject } } } }`);
    assert.equal(audit.data.auditEvents.edges[0].node.subject, '1.1.0');

    const again = (await t.gql(UPGRADE, { input: { slug: 'old-timer' } })).data.upgradeTenantSchema;
    assert.deepEqual([again.fromVersion, again.toVersion, again.appliedVersions], ['1.1.0', '1.1.0', []]);
    const down = (await t.gql(UPGRADE, { input: { slug: 'old-timer', targetVersion: '1.0.0' } })).data.upgradeTenantSchema;
    assert.deepEqual(down.userErrors.map((e: any) => e.code), ['INVALID_INPUT']);
  });

  test('a step that fails half-way is rolled back alone: the tenant stays at the last good version, intact', async () => {
    const tenant = await provision({ slug: 'brittle', displayName: 'b', template: 'fragile', templateVersion: '1.0.0' });
    await inTenant(tenant.databaseName, (c) => c.query(`INSERT INTO notes (id, body) VALUES (1, 'precious')`));
    const r = (await t.gql(UPGRADE, { input: { slug: 'brittle', targetVersion: '1.2.0' } })).data.upgradeTenantSchema;
    assert.deepEqual(r.appliedVersions, ['1.1.0']);
    assert.deepEqual(r.failedStep, { version: '1.2.0', message: 'division by zero' });
    assert.equal(r.toVersion, '1.1.0');
    assert.deepEqual(r.userErrors.map((e: any) => e.code), ['UPGRADE_FAILED']);
    assert.equal(r.tenant.schemaVersion.version, '1.1.0');
    await inTenant(tenant.databaseName, async (c) => {
      const columns = await c.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' ORDER BY ordinal_position`);
      assert.deepEqual(columns.rows.map((x) => x.column_name), ['id', 'body', 'title'], 'the failed step\'s column is gone, the good step\'s stays');
      assert.deepEqual((await c.query(`SELECT id, body FROM notes`)).rows, [{ id: 1, body: 'precious' }]);
      assert.equal((await c.query(`SELECT "Version" FROM "__SchemaVersion"`)).rows[0].Version, '1.1.0');
    });
    const audit = await t.gql(`{ auditEvents(first: 5, filter: { tenantSlug: "brittle" }) { edges { node { action subject } } } }`);
    assert.deepEqual(audit.data.auditEvents.edges.slice(0, 2).map((e: any) => [e.node.action, e.node.subject]), [
      ['tenant.schema.upgrade.failed', '1.2.0'],
      ['tenant.schema.upgraded', '1.1.0'],
    ]);
  });
});

describe('extensions', () => {
  test('pg_trgm installed at 1.3 is OUTDATED; updateTenantExtensions brings it to the newest and OK', async () => {
    const tenant = await provision({ slug: 'trigrams', displayName: 't' });
    await downgradeTrgm(tenant.databaseName);
    const q = `{ tenant(slug: "trigrams") { extensions(live: true) { name required installedVersion availableVersion requiredVersion status } } }`;
    const live = (await t.gql(q)).data.tenant.extensions;
    assert.deepEqual(live, [{ name: 'pg_trgm', required: true, installedVersion: '1.3', availableVersion: '1.6', requiredVersion: '1.3', status: 'OUTDATED' }]);

    const r = (await t.gql(`mutation { updateTenantExtensions(input: { slug: "trigrams" }) { changes extensions { name installedVersion status } userErrors { code } } }`)).data.updateTenantExtensions;
    assert.deepEqual(r.changes, ['updated pg_trgm 1.3 → 1.6']);
    assert.deepEqual(r.extensions, [{ name: 'pg_trgm', installedVersion: '1.6', status: 'OK' }]);
    const recorded = (await t.gql(`{ tenant(slug: "trigrams") { extensions { name installedVersion status } } }`)).data.tenant.extensions;
    assert.deepEqual(recorded, [{ name: 'pg_trgm', installedVersion: '1.6', status: 'OK' }]);
    await inTenant(tenant.databaseName, async (c) => assert.equal((await c.query(`SELECT extversion FROM pg_extension WHERE extname = 'pg_trgm'`)).rows[0].extversion, '1.6'));
  });

  test('a missing required extension is MISSING and gets installed', async () => {
    const tenant = await provision({ slug: 'bare', displayName: 'b' });
    await inTenant(tenant.databaseName, (c) => c.query(`DROP EXTENSION pg_trgm`));
    const live = (await t.gql(`{ tenant(slug: "bare") { extensions(live: true) { name status } } }`)).data.tenant.extensions;
    assert.deepEqual(live, [{ name: 'pg_trgm', status: 'MISSING' }]);
    const r = (await t.gql(`mutation { updateTenantExtensions(input: { slug: "bare" }) { changes extensions { status } } }`)).data.updateTenantExtensions;
    assert.deepEqual(r.changes, ['installed pg_trgm 1.6']);
    assert.deepEqual(r.extensions, [{ status: 'OK' }]);
  });

  test('an outdated extension installed by hand in public: moved to extensions and updated by a superuser control plane, else a userError naming it and why', async () => {
    const tenant = await provision({ slug: 'public-trgm', displayName: 'p' });
    await inTenant(tenant.databaseName, (c) => c.query(`DROP EXTENSION pg_trgm CASCADE; CREATE EXTENSION pg_trgm WITH SCHEMA public VERSION '1.3'`));
    const superuser = (await t.admin.query(`SELECT rolsuper FROM pg_roles WHERE rolname = $1`, [decodeURIComponent(new URL(controlPlaneUrl()).username)])).rows[0].rolsuper;
    const r = (await t.gql(`mutation { updateTenantExtensions(input: { slug: "public-trgm" }) { changes extensions { name installedVersion status } userErrors { code field message } } }`)).data.updateTenantExtensions;
    const where = await inTenant(tenant.databaseName, async (c) => (await c.query(`SELECT e.extversion AS version, n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'`)).rows[0]);
    if (superuser) {
      assert.deepEqual(r.userErrors, []);
      assert.deepEqual(r.changes, ['moved pg_trgm from public to extensions', 'updated pg_trgm 1.3 → 1.6']);
      assert.deepEqual(r.extensions, [{ name: 'pg_trgm', installedVersion: '1.6', status: 'OK' }]);
      assert.deepEqual(where, { version: '1.6', schema: 'extensions' });
      const audit = await t.gql(`{ auditEvents(first: 2, filter: { tenantSlug: "public-trgm" }) { edges { node { action subject metadata } } } }`);
      assert.deepEqual(audit.data.auditEvents.edges.map((e: any) => e.node).reverse(), [
        { action: 'tenant.extension.moved', subject: 'pg_trgm', metadata: { from: 'public', to: 'extensions' } },
        { action: 'tenant.extension.updated', subject: 'pg_trgm', metadata: { from: '1.3', to: '1.6' } },
      ]);
    } else {
      assert.deepEqual(r.changes, []);
      assert.deepEqual(r.userErrors.map((e: any) => e.code), ['EXTENSION_UNSAFE_SCHEMA']);
      assert.match(r.userErrors[0].message, /extension pg_trgm was not updated: it lives in schema public, not extensions/);
      // Installed by hand as the superuser: it is the superuser's, which only it can move.
      assert.match(r.userErrors[0].message, /it belongs to "[^"]+", and only its owner or a superuser can move it|moving it needs a superuser, and this control plane is not one/);
      assert.match(r.userErrors[0].message, /ALTER EXTENSION pg_trgm SET SCHEMA extensions/);
      assert.deepEqual(r.extensions, [{ name: 'pg_trgm', installedVersion: '1.3', status: 'OUTDATED' }]);
      assert.deepEqual(where, { version: '1.3', schema: 'public' }, 'left exactly as it was');
    }
  });

  test('Cluster.extensions lists what the server offers', async () => {
    const r = await t.gql(`{ clusters { extensions { name defaultVersion versions } } }`);
    const trgm = r.data.clusters[0].extensions.find((e: any) => e.name === 'pg_trgm');
    assert.equal(trgm.defaultVersion, '1.6');
    assert.ok(trgm.versions.includes('1.3') && trgm.versions.includes('1.6'));
  });
});
