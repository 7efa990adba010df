import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PROVISION, settle, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { until } from './support/subscriptions.js';
import { inDatabase, TestTemplates, downgradeTrgm } from './support/templates.js';

let t: TestTenantry;
let templates: TestTemplates;
let dir: string;
const inTenant = inDatabase;

// In production /health/ready on the public port needs an ADMIN key (INTERNAL_ENDPOINTS_AUTH's default there).
const ready = async (url: string, key?: string) => {
  const res = await fetch(`${url}/health/ready`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { status: res.status, body: (await res.json()) as any };
};

before(async () => {
  templates = await TestTemplates.create();
  dir = templates.dir;
  const addTemplate = templates.add.bind(templates);
  const simple = { description: 'x', tables: ['notes'], extensions: { required: [{ name: 'pg_trgm' }] } };
  await addTemplate('major', '1.0.0', simple, 'CREATE TABLE notes (id int);');
  await addTemplate('major', '2.0.0', { ...simple, description: 'breaking' }, 'ALTER TABLE notes RENAME COLUMN id TO note_id;');
  await addTemplate('picky', '1.0.0', simple, 'CREATE TABLE notes (id int);');
  t = await startTestTenantry({ env: { TEMPLATES_DIR: dir } });
});
after(async () => {
  await t.cleanup();
  await templates.remove();
});

describe('inventory', () => {
  test('changes made behind Tenantry\'s back are found, recorded, reported in the API and the audit trail', async () => {
    const p = (await t.gql(PROVISION, { input: { slug: 'tampered', displayName: 't' } })).data.provisionTenant.tenant;
    await settle(t); // the inventory looks at a new tenant in the background
    const clean = await t.gql(`{ tenant(slug: "tampered") { inventory { databasePresent missingTables drift } } }`);
    assert.deepEqual(clean.data.tenant.inventory, { databasePresent: true, missingTables: [], drift: [] });

    await inTenant(p.databaseName, (c) =>
      c.query(`UPDATE "__SchemaVersion" SET "Version" = '1.0.0'; DROP TABLE documents`),
    );
    await downgradeTrgm(p.databaseName);
    // Lists read the records, so they do not see it yet.
    const before = await t.gql(`{ tenant(slug: "tampered") { schemaVersion { version } extensions { installedVersion } } }`);
    assert.deepEqual(before.data.tenant, { schemaVersion: { version: '1.1.0' }, extensions: [{ installedVersion: '1.6' }] });

    const findings = await t.app.parts.inventory.run();
    const mine = findings.find((f) => f.slug === 'tampered')!;
    assert.deepEqual(mine.drift, ['schema version is 1.0.0, recorded 1.1.0', 'extension pg_trgm is at 1.3, recorded 1.6']);
    assert.deepEqual(mine.missingTables, ['documents']);

    const after = await t.gql(`{ tenant(slug: "tampered") {
      schemaVersion { version compatibility } extensions { installedVersion status } inventory { databasePresent missingTables drift } } }`);
    assert.deepEqual(after.data.tenant, {
      schemaVersion: { version: '1.0.0', compatibility: 'UPGRADE_AVAILABLE' },
      extensions: [{ installedVersion: '1.3', status: 'OUTDATED' }],
      inventory: { databasePresent: true, missingTables: ['documents'], drift: ['schema version is 1.0.0, recorded 1.1.0', 'extension pg_trgm is at 1.3, recorded 1.6'] },
    });
    const audit = await t.gql(`{ auditEvents(first: 1, filter: { tenantSlug: "tampered", action: "tenant.drift.detected" }) { edges { node { actor metadata } } } }`);
    assert.deepEqual(audit.data.auditEvents.edges[0].node, {
      actor: 'inventory',
      metadata: { drift: ['schema version is 1.0.0, recorded 1.1.0', 'extension pg_trgm is at 1.3, recorded 1.6'], missingTables: ['documents'] },
    });

    const health = await t.gql(`{ health { ready mode tenants { slug problems blocking } warnings } }`);
    assert.equal(health.data.health.ready, true, 'development: problems are warnings');
    const problems = health.data.health.tenants.find((x: any) => x.slug === 'tampered');
    assert.deepEqual(problems, { slug: 'tampered', problems: ['table documents is missing', 'extension pg_trgm is OUTDATED (1.3)'], blocking: false });
    await t.gql(`mutation { deprovisionTenant(input: { slug: "tampered", confirm: "tampered" }) { tenant { status } } }`);
  });

  test('a restart does not look into the whole fleet again: its pass takes only tenants not seen within INVENTORY_INTERVAL_MS', async () => {
    for (const slug of ['seen-1', 'seen-2', 'seen-3']) await t.gql(PROVISION, { input: { slug, displayName: slug } });
    await t.app.parts.inventory.run(); // every tenant has a fresh record now
    await t.gql(PROVISION, { input: { slug: 'seen-never', displayName: 'n' } });
    const never = { tenant: { slug: 'seen-never' } };
    await settle(t);
    // The single look after provisioning is what recorded it; remove its record to stand for a tenant never looked at.
    assert.equal((await t.app.parts.db.tenantInventory.deleteMany({ where: never })).count, 1);
    const second = await startTestTenantry({ shareWith: t, env: { TEMPLATES_DIR: dir, INVENTORY_INTERVAL_MS: '600000' } });
    try {
      const progress = await until(() => second.app.parts.inventory.progress(), (p) => p.passes >= 1, 'the start pass');
      assert.equal(progress.total, 1, 'only the tenant without a fresh record was looked at');
      assert.notEqual(await second.app.parts.db.tenantInventory.findFirst({ where: never }), null);
      // run() (an explicit pass) still looks at every tenant.
      await second.app.parts.inventory.run();
      assert.ok(second.app.parts.inventory.progress().total >= 4);
    } finally {
      await second.stop();
    }
    for (const slug of ['seen-1', 'seen-2', 'seen-3', 'seen-never']) await t.gql(`mutation { deprovisionTenant(input: { slug: "${slug}", confirm: "${slug}" }) { tenant { status } } }`);
  });
});

describe('readiness', () => {
  test('/health/ready and health report the control database, the cluster, the pooler and the tenants', async () => {
    const r = await ready(t.url);
    assert.equal(r.status, 200);
    assert.equal(r.body.mode, 'development');
    const names = r.body.checks.map((c: any) => c.name);
    assert.deepEqual(names, ['control-database', 'cluster:default', 'pooler']);
    assert.ok(r.body.checks.every((c: any) => c.ok));
    assert.match(r.body.checks[1].detail, /^PostgreSQL \d+/);
    const q = await t.gql(`{ health { ready mode checks { name ok } } }`);
    assert.deepEqual(q.data.health.checks.map((c: any) => c.name), names);
  });

  test('production: an INCOMPATIBLE tenant makes the server not ready (503) with the reason; development only warns', async () => {
    const p = (await t.gql(PROVISION, { input: { slug: 'stuck-on-one', displayName: 's', template: 'major', templateVersion: '1.0.0' } })).data.provisionTenant;
    assert.deepEqual(p.userErrors, []);
    const compat = await t.gql(`{ tenant(slug: "stuck-on-one") { schemaVersion { version expectedVersion compatibility } } }`);
    assert.deepEqual(compat.data.tenant.schemaVersion, { version: '1.0.0', expectedVersion: '2.0.0', compatibility: 'INCOMPATIBLE' });

    const dev = await ready(t.url);
    assert.equal(dev.status, 200);
    assert.ok(dev.body.warnings.some((w: string) => w.includes('stuck-on-one') && w.includes('INCOMPATIBLE')));

    const production = await startTestTenantry({ shareWith: t, env: { TEMPLATES_DIR: dir, NODE_ENV: 'production' } });
    try {
      const r = await ready(production.url, production.adminKey);
      assert.equal(r.status, 503);
      assert.equal(r.body.ready, false);
      assert.deepEqual(r.body.reasons, ['tenant stuck-on-one: schema 1.0.0 is INCOMPATIBLE with major 2.0.0']);
      assert.ok(production.logs.some((l) => l.includes('not ready') && l.includes('stuck-on-one')), 'the start-up check says so too');

      // Upgrading across the major (named explicitly) makes it ready again.
      const up = await production.gql(`mutation { upgradeTenantSchema(input: { slug: "stuck-on-one", targetVersion: "2.0.0" }) { toVersion userErrors { code } } }`);
      assert.equal(up.data.upgradeTenantSchema.toVersion, '2.0.0');
      assert.equal((await ready(production.url, production.adminKey)).status, 200);
    } finally {
      await production.stop();
    }
  });

  test('a required extension the server lacks shows UNAVAILABLE, and readiness reports it', async () => {
    await t.gql(PROVISION, { input: { slug: 'demanding', displayName: 'd', template: 'picky' } });
    // The template now requires an extension this server does not have (its manifest changed; a new server loads it).
    await templates.setManifest('picky', '1.0.0', { description: 'x', tables: ['notes'], extensions: { required: [{ name: 'pg_trgm' }, { name: 'no_such_extension', minVersion: '1.0' }] } });
    const next = await startTestTenantry({ shareWith: t, env: { TEMPLATES_DIR: dir } });
    try {
      const r = await next.gql(`{ tenant(slug: "demanding") { extensions { name status installedVersion availableVersion requiredVersion } } }`);
      assert.deepEqual(r.data.tenant.extensions, [
        { name: 'pg_trgm', status: 'OK', installedVersion: '1.6', availableVersion: '1.6', requiredVersion: null },
        { name: 'no_such_extension', status: 'UNAVAILABLE', installedVersion: null, availableVersion: null, requiredVersion: '1.0' },
      ]);
      const report = await ready(next.url);
      const mine = report.body.tenants.find((x: any) => x.slug === 'demanding');
      assert.deepEqual(mine.problems, ['extension no_such_extension is UNAVAILABLE']);
      assert.ok(report.body.warnings.some((w: string) => w.includes('no_such_extension is UNAVAILABLE')));
    } finally {
      await next.stop();
    }
  });
});
