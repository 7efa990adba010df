import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { inDatabase, downgradeTrgm } from './support/templates.js';

// A single tenant's view says how old its recorded extensions are, and refreshTenant brings
// them up to date now instead of at the next inventory pass (INVENTORY_INTERVAL_MS).

let t: TestTenantry;
let databaseName: string;
let tenantAdminKey: string;
before(async () => {
  // No periodic pass during the test: only refreshTenant (and provisioning) read the database.
  t = await startTestTenantry({ env: { INVENTORY_INTERVAL_MS: '0' } });
  for (const slug of ['kept', 'other']) {
    const r = await t.gql(PROVISION, { input: { slug, displayName: slug } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
    if (slug === 'kept') databaseName = r.data.provisionTenant.tenant.databaseName;
  }
  const key = await t.gql(`mutation { createApiKey(input: { name: "kept admin", role: TENANT_ADMIN, tenantSlug: "kept" }) { key } }`);
  tenantAdminKey = key.data.createApiKey.key;
});
after(() => t?.cleanup());

const VIEW = `{ tenant(slug: "kept") {
  extensions { name installedVersion status recordedAt checkedAt }
  inventory { checkedAt drift } } }`;
const REFRESH = `mutation($slug: String!) { refreshTenant(input: { slug: $slug }) {
  drift
  tenant { slug extensions { name installedVersion status recordedAt checkedAt } inventory { checkedAt drift } }
  userErrors { code field message } } }`;

test('a change made by hand: the recorded view says how old it is, refreshTenant shows the change, audited', async () => {
  const before = (await t.gql(VIEW)).data.tenant;
  const [trgm] = before.extensions;
  assert.equal(trgm.name, 'pg_trgm');
  assert.equal(trgm.status, 'OK');
  assert.ok(trgm.recordedAt, 'the recorded version says when it was recorded');
  assert.equal(trgm.checkedAt, before.inventory.checkedAt, 'and when the database was last read for it');
  const installed = trgm.installedVersion;

  await downgradeTrgm(databaseName);
  const stale = (await t.gql(VIEW)).data.tenant.extensions[0];
  assert.deepEqual([stale.installedVersion, stale.checkedAt], [installed, trgm.checkedAt], 'the recorded view is stale, and says since when');

  const r = (await t.gql(REFRESH, { slug: 'kept' })).data.refreshTenant;
  assert.deepEqual(r.userErrors, []);
  assert.deepEqual(r.drift, [`extension pg_trgm is at 1.3, recorded ${installed}`]);
  const fresh = r.tenant.extensions[0];
  assert.deepEqual([fresh.installedVersion, fresh.status], ['1.3', 'OUTDATED']);
  assert.ok(Date.parse(fresh.checkedAt) > Date.parse(trgm.checkedAt), 'checkedAt moved on');
  assert.ok(Date.parse(fresh.recordedAt) > Date.parse(trgm.recordedAt), 'the new version was recorded');
  assert.equal(fresh.checkedAt, r.tenant.inventory.checkedAt);
  assert.deepEqual(r.tenant.inventory.drift, r.drift);

  // The next plain read shows the same: the records followed the database.
  assert.deepEqual((await t.gql(VIEW)).data.tenant.extensions[0], fresh);

  const audit = await t.gql(`{ auditEvents(first: 5, filter: { tenantSlug: "kept", action: "tenant.refreshed" }) { edges { node { actor subject metadata } } } }`);
  const events = audit.data.auditEvents.edges.map((e: any) => e.node);
  assert.equal(events.length, 1);
  assert.equal(events[0].subject, databaseName);
  assert.match(events[0].actor, /^ADMIN_API_KEY \(apikey:[0-9a-f-]{36}\)$/);
  assert.deepEqual(events[0].metadata.drift, r.drift);
});

test('a refresh with nothing changed finds no drift', async () => {
  const r = (await t.gql(REFRESH, { slug: 'kept' })).data.refreshTenant;
  assert.deepEqual([r.userErrors, r.drift], [[], []]);
});

test('the tenant\'s own TENANT_ADMIN key may refresh it, not another tenant; unknown slugs are NOT_FOUND', async () => {
  const own = (await t.gql(REFRESH, { slug: 'kept' }, tenantAdminKey)).data.refreshTenant;
  assert.deepEqual(own.userErrors, []);
  assert.equal(own.tenant.slug, 'kept');
  const other = (await t.gql(REFRESH, { slug: 'other' }, tenantAdminKey)).data.refreshTenant;
  assert.deepEqual(other.userErrors.map((e: any) => [e.code, e.field]), [['NOT_FOUND', 'slug']]);
  assert.equal(other.tenant, null);
  const nobody = (await t.gql(REFRESH, { slug: 'nobody-here' })).data.refreshTenant;
  assert.deepEqual(nobody.userErrors.map((e: any) => e.code), ['NOT_FOUND']);

  const reader = (await t.gql(`mutation { createApiKey(input: { name: "r", role: TENANT_READER, tenantSlug: "kept" }) { key } }`)).data.createApiKey;
  const refused = await t.gql(REFRESH, { slug: 'kept' }, reader.key);
  assert.equal(refused.errors?.[0]?.extensions?.code, 'FORBIDDEN', 'a TENANT_READER key may not');
});

test('live: true reads now and says so', async () => {
  const asked = new Date(Math.floor(Date.now() / 1000) * 1000);
  const r = await t.gql(`{ tenant(slug: "kept") { extensions(live: true) { installedVersion checkedAt recordedAt } } }`);
  const [e] = r.data.tenant.extensions;
  assert.equal(e.installedVersion, '1.3');
  assert.equal(e.recordedAt, null);
  assert.ok(Date.parse(e.checkedAt) >= asked.getTime(), `${e.checkedAt} is the time of this read`);
});
