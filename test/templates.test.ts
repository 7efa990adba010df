import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import format from 'pg-format';
import { TemplateCatalog } from '../src/modules/templates/template-catalog.js';
import { PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { TestTemplates } from './support/templates.js';

let t: TestTenantry;
let templates: TestTemplates;
let dir: string;


before(async () => {
  templates = await TestTemplates.create();
  dir = templates.dir;
  const addTemplate = templates.add.bind(templates);
  await addTemplate('needs-missing', '1.0.0', { description: 'x', extensions: { required: [{ name: 'no_such_extension_here' }] } }, 'CREATE TABLE t (id int);');
  await addTemplate('too-new', '1.0.0', { description: 'x', extensions: { required: [{ name: 'pg_trgm', minVersion: '99.0' }] } }, 'CREATE TABLE t (id int);');
  await addTemplate('broken', '1.0.0', { description: 'x', extensions: { required: [] } }, 'CREATE TABLE fine (id int);\nCREATE TABLE broken (id no_such_type);');
  await addTemplate('two-step', '1.0.0', { description: 'first', extensions: { required: [] } }, 'CREATE TABLE notes (id int PRIMARY KEY);');
  await addTemplate('two-step', '1.1.0', { description: 'second', extensions: { required: [] } }, 'ALTER TABLE notes ADD COLUMN body text;');
  t = await startTestTenantry({ env: { TEMPLATES_DIR: dir } });
});
after(async () => {
  await t.cleanup();
  await templates.remove();
});

const templateDatabases = async () =>
  (await t.admin.query(`SELECT datname, datistemplate, datallowconn FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname`, [`${t.controlDatabase}_tpl_`])).rows;

test('each template version is prepared once, sealed, and tenants are copied from it', async () => {
  for (const slug of ['one', 'two', 'three']) {
    const r = await t.gql(PROVISION, { input: { slug, displayName: slug } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
  }
  const templates = await templateDatabases();
  assert.equal(templates.length, 1);
  assert.deepEqual({ ...templates[0], datname: undefined }, { datname: undefined, datistemplate: true, datallowconn: false });
  assert.match(templates[0].datname, /_tpl_default_1_1_0_[0-9a-f]{10}$/);
});

test('a template database dropped while the server runs is prepared again by the next provision', async () => {
  const [template] = await templateDatabases();
  assert.ok(template, 'prepared by the test before');
  await t.admin.query(format('ALTER DATABASE %I WITH IS_TEMPLATE false', template.datname));
  await t.admin.query(format('DROP DATABASE %I', template.datname));
  const r = await t.gql(PROVISION, { input: { slug: 'after-drop', displayName: 'after drop' } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  assert.equal(r.data.provisionTenant.tenant.status, 'ACTIVE');
  assert.deepEqual((await templateDatabases()).map((x) => x.datname), [template.datname]);
});

test('a required extension the server lacks, or lacks at the minimum version: EXTENSION_UNAVAILABLE, nothing left', async () => {
  for (const template of ['needs-missing', 'too-new']) {
    const r = await t.gql(PROVISION, { input: { slug: `x-${template}`, displayName: 'x', template } });
    const p = r.data.provisionTenant;
    assert.deepEqual(p.userErrors.map((e: any) => e.code), ['EXTENSION_UNAVAILABLE']);
    assert.equal(p.tenant.status, 'FAILED');
    assert.equal(p.tenant.provisioning.failedStep, 'TEMPLATE');
  }
  const left = await t.admin.query(`SELECT datname FROM pg_database WHERE datname LIKE '%needs_missing%' OR datname LIKE '%too_new%'`);
  assert.deepEqual(left.rows, []);
  const roles = await t.admin.query(`SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) AND rolname LIKE '%x_%'`, [t.prefix]);
  assert.deepEqual(roles.rows, []);
});

test('a template whose SQL fails half-way leaves no template database, tenant database or role', async () => {
  const r = await t.gql(PROVISION, { input: { slug: 'brittle', displayName: 'b', template: 'broken' } });
  assert.deepEqual(r.data.provisionTenant.userErrors.map((e: any) => e.code), ['PROVISIONING_FAILED']);
  assert.equal((await templateDatabases()).filter((d) => d.datname.includes('broken')).length, 0);
  const objects = await t.admin.query(`SELECT 1 FROM pg_database WHERE datname = $1 UNION ALL SELECT 1 FROM pg_roles WHERE rolname = $1`, [`${t.prefix}brittle`]);
  assert.equal(objects.rowCount, 0);
});

test('templateVersion picks an older version; the default is the newest, with every step applied', async () => {
  const old = await t.gql(PROVISION, { input: { slug: 'old-notes', displayName: 'o', template: 'two-step', templateVersion: '1.0.0' } });
  const cur = await t.gql(PROVISION, { input: { slug: 'new-notes', displayName: 'n', template: 'two-step' } });
  const columns = async (db: string) => {
    const pg = (await import('pg')).default;
    const { withDatabase } = await import('../src/platform/db/connection-url.js');
    const c = new pg.Client({ connectionString: withDatabase(process.env.TEST_DATABASE_URL!, db) });
    await c.connect();
    try {
      const cols = await c.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' ORDER BY ordinal_position`);
      const version = await c.query(`SELECT "Version" FROM "__SchemaVersion"`);
      return { columns: cols.rows.map((r) => r.column_name), version: version.rows[0].Version };
    } finally {
      await c.end();
    }
  };
  assert.deepEqual(await columns(old.data.provisionTenant.tenant.databaseName), { columns: ['id'], version: '1.0.0' });
  assert.deepEqual(await columns(cur.data.provisionTenant.tenant.databaseName), { columns: ['id', 'body'], version: '1.1.0' });
  const listed = await t.gql(`{ tenant(slug: "old-notes") { schemaVersion { version expectedVersion compatibility } } }`);
  assert.deepEqual(listed.data.tenant.schemaVersion, { version: '1.0.0', expectedVersion: '1.1.0', compatibility: 'UPGRADE_AVAILABLE' });
  const missing = await t.gql(PROVISION, { input: { slug: 'nope', displayName: 'n', template: 'two-step', templateVersion: '3.0.0' } });
  assert.deepEqual(missing.data.provisionTenant.userErrors.map((e: any) => [e.code, e.field]), [['TEMPLATE_NOT_FOUND', 'templateVersion']]);
});

test('schemaTemplates lists every template and version; editing a template changes its fingerprint', async () => {
  const r = await t.gql('{ schemaTemplates { name latestVersion versions { version } } }');
  const twoStep = r.data.schemaTemplates.find((s: any) => s.name === 'two-step');
  assert.deepEqual(twoStep, { name: 'two-step', latestVersion: '1.1.0', versions: [{ version: '1.0.0' }, { version: '1.1.0' }] });

  const before = await TemplateCatalog.load(dir);
  await writeFile(path.join(dir, 'two-step', '1.0.0', 'migration.sql'), 'CREATE TABLE notes (id bigint PRIMARY KEY);');
  const edited = await TemplateCatalog.load(dir);
  assert.notEqual(edited.fingerprint(edited.resolve('two-step')!), before.fingerprint(before.resolve('two-step')!));
  assert.equal(edited.fingerprint(edited.resolve('default')!), before.fingerprint(before.resolve('default')!));
});
