// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { PROVISION, startTestTenantry, type GraphQLResponse, type TestTenantry } from './support/test-tenantry.js';

let t: TestTenantry;
const keys: Record<'admin' | 'readerA' | 'adminA' | 'adminB' | 'revoked' | 'expired', string> = {} as never;
let tenantA: { id: string; slug: string };
let tenantB: { id: string; slug: string };
const issuedKeys: string[] = [];

const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id name role keyPrefix tenant { slug } } userErrors { code field message } } }`;
const REVOKE_KEY = `mutation($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) { apiKey { id revokedAt } userErrors { code field message } } }`;

async function createKey(input: Record<string, unknown>, as = t.adminKey) {
  const r = await t.gql(CREATE_KEY, { input }, as);
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  assert.deepEqual(r.data.createApiKey.userErrors, []);
  issuedKeys.push(r.data.createApiKey.key);
  return r.data.createApiKey as { key: string; apiKey: { id: string } };
}

before(async () => {
  t = await startTestTenantry();
  keys.admin = t.adminKey;
  issuedKeys.push(t.adminKey);
  for (const slug of ['alpha', 'beta']) {
    const r = await t.gql(PROVISION, { input: { slug, displayName: slug } });
    const tenant = r.data.provisionTenant.tenant;
    if (slug === 'alpha') tenantA = tenant;
    else tenantB = tenant;
  }
  keys.readerA = (await createKey({ name: 'alpha reader', role: 'TENANT_READER', tenantSlug: 'alpha' })).key;
  keys.adminA = (await createKey({ name: 'alpha admin', role: 'TENANT_ADMIN', tenantSlug: 'alpha' })).key;
  keys.adminB = (await createKey({ name: 'beta admin', role: 'TENANT_ADMIN', tenantSlug: 'beta' })).key;
  const revoked = await createKey({ name: 'to revoke', role: 'TENANT_ADMIN', tenantSlug: 'alpha' });
  keys.revoked = revoked.key;
  const r = await t.gql(REVOKE_KEY, { input: { id: revoked.apiKey.id } });
  assert.ok(r.data.revokeApiKey.apiKey.revokedAt);
  keys.expired = (await createKey({ name: 'short-lived', role: 'ADMIN', expiresAt: new Date(Date.now() + 1000).toISOString() })).key;
  await sleep(1100);
});
after(() => t.cleanup());

const code = (r: GraphQLResponse) => r.errors?.[0]?.extensions?.code;

describe('keys that do not authenticate', () => {
  const operations = [
    '{ viewer { role } }',
    '{ tenants(first: 5) { edges { node { slug } } } }',
    '{ tenant(slug: "alpha") { slug } }',
    '{ node(id: "VGVuYW50OjA=") { id } }',
    '{ clusters { name } }',
    '{ auditEvents(first: 5) { edges { node { action } } } }',
    '{ schemaTemplates { name } }',
    `mutation { provisionTenant(input: { slug: "intruder", displayName: "x" }) { userErrors { code } } }`,
    `mutation { deprovisionTenant(input: { slug: "alpha", confirm: "alpha" }) { userErrors { code } } }`,
    `mutation { createApiKey(input: { name: "x", role: ADMIN }) { key } }`,
    `mutation { revokeApiKey(input: { id: "QXBpS2V5OjA=" }) { userErrors { code } } }`,
  ];
  for (const [label, key, message] of [
    ['no key', null, /Authentication required/],
    ['an unknown key', `tnry_${'0'.repeat(64)}`, /not valid/],
    ['a revoked key', 'revoked', /revoked/],
    ['an expired key', 'expired', /expired/],
  ] as const) {
    test(`${label}: every query and mutation is UNAUTHENTICATED`, async () => {
      const k = key === 'revoked' || key === 'expired' ? keys[key] : key;
      for (const op of operations) {
        const r = await t.gql(op, {}, k);
        assert.equal(code(r), 'UNAUTHENTICATED', `${label}: ${op} → ${JSON.stringify(r.errors ?? r.data)}`);
        assert.match(r.errors![0]!.message, message);
        // Non-null fields null the whole response; nullable ones are null themselves.
        assert.ok(r.data === null || Object.values(r.data).every((v) => v === null), JSON.stringify(r.data));
      }
      const tenants = await t.admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${t.prefix}intruder`]);
      assert.equal(tenants.rowCount, 0);
    });
  }
  test('a malformed Authorization header is an authentication error', async () => {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: keys.admin },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    const body = (await res.json()) as GraphQLResponse;
    assert.equal(body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
  });
});

describe('what each valid key sees', () => {
  test('viewer says who is calling', async () => {
    const admin = await t.gql('{ viewer { keyName role tenant { slug } } }', {}, keys.admin);
    assert.deepEqual(admin.data.viewer, { keyName: 'ADMIN_API_KEY', role: 'ADMIN', tenant: null });
    const reader = await t.gql('{ viewer { keyName role keyPrefix tenant { slug } } }', {}, keys.readerA);
    assert.deepEqual(reader.data.viewer, { keyName: 'alpha reader', role: 'TENANT_READER', keyPrefix: keys.readerA.slice(0, 11), tenant: { slug: 'alpha' } });
  });

  test('tenants: an admin sees all; a tenant key sees only its own tenant', async () => {
    const q = '{ tenants(first: 10) { edges { node { slug } } } }';
    const slugs = async (k: string) => (await t.gql(q, {}, k)).data.tenants.edges.map((e: any) => e.node.slug);
    assert.deepEqual(await slugs(keys.admin), ['alpha', 'beta']);
    assert.deepEqual(await slugs(keys.readerA), ['alpha']);
    assert.deepEqual(await slugs(keys.adminA), ['alpha']);
    assert.deepEqual(await slugs(keys.adminB), ['beta']);
  });

  test("tenant(slug) and node(id) of another tenant are null, never FORBIDDEN", async () => {
    const bySlug = '{ tenant(slug: "alpha") { slug } }';
    assert.deepEqual((await t.gql(bySlug, {}, keys.readerA)).data.tenant, { slug: 'alpha' });
    const hidden = await t.gql(bySlug, {}, keys.adminB);
    assert.equal(hidden.errors, undefined);
    assert.equal(hidden.data.tenant, null);
    const missing = await t.gql('{ tenant(slug: "no-such") { slug } }', {}, keys.adminB);
    assert.deepEqual(missing.data, hidden.data, 'another tenant looks exactly like no tenant');

    const byId = `query($id: ID!) { node(id: $id) { id ... on Tenant { slug } } }`;
    assert.deepEqual((await t.gql(byId, { id: tenantA.id }, keys.readerA)).data.node, { id: tenantA.id, slug: 'alpha' });
    assert.deepEqual((await t.gql(byId, { id: tenantA.id }, keys.admin)).data.node, { id: tenantA.id, slug: 'alpha' });
    const other = await t.gql(byId, { id: tenantA.id }, keys.adminB);
    assert.equal(other.errors, undefined);
    assert.equal(other.data.node, null);
  });

  test('clusters are for admins', async () => {
    const q = '{ clusters { name tenantCount allocatedConnections serverVersion } }';
    const admin = await t.gql(q, {}, keys.admin);
    assert.equal(admin.data.clusters[0].name, 'default');
    assert.equal(admin.data.clusters[0].tenantCount, 2);
    assert.equal(admin.data.clusters[0].allocatedConnections, 100);
    assert.equal(code(await t.gql(q, {}, keys.adminA)), 'FORBIDDEN');
    // A tenant still sees the cluster its own tenant lives on.
    const own = await t.gql('{ tenant(slug: "alpha") { cluster { name } } }', {}, keys.readerA);
    assert.equal(own.data.tenant.cluster.name, 'default');
  });

  test("auditEvents: a tenant key sees only its own tenant's events", async () => {
    const q = '{ auditEvents(first: 100) { edges { node { action tenantSlug } } } }';
    const all = (await t.gql(q, {}, keys.admin)).data.auditEvents.edges.map((e: any) => e.node.tenantSlug);
    assert.ok(all.includes('alpha') && all.includes('beta') && all.includes(null));
    const mine = (await t.gql(q, {}, keys.readerA)).data.auditEvents.edges.map((e: any) => e.node.tenantSlug);
    assert.ok(mine.length > 0);
    assert.deepEqual([...new Set(mine)], ['alpha']);
    const theirs = (await t.gql('{ auditEvents(first: 100, filter: { tenantSlug: "alpha" }) { edges { node { action } } } }', {}, keys.adminB)).data.auditEvents.edges;
    assert.deepEqual(theirs, []);
  });

  test('schemaTemplates: any valid key', async () => {
    const r = await t.gql('{ schemaTemplates { name latestVersion versions { version requiredExtensions { name minVersion } } } }', {}, keys.readerA);
    assert.deepEqual(r.data.schemaTemplates[0].versions[0].requiredExtensions, [{ name: 'pg_trgm', minVersion: '1.3' }]);
  });
});

describe('mutations by role', () => {
  test('provisionTenant and deprovisionTenant are admin only', async () => {
    for (const k of [keys.adminA, keys.readerA]) {
      const p = await t.gql(`mutation { provisionTenant(input: { slug: "gamma", displayName: "g" }) { tenant { slug } } }`, {}, k);
      assert.equal(code(p), 'FORBIDDEN');
      const d = await t.gql(`mutation { deprovisionTenant(input: { slug: "alpha", confirm: "alpha" }) { tenant { slug } } }`, {}, k);
      assert.equal(code(d), 'FORBIDDEN');
    }
    const alive = await t.gql('{ tenant(slug: "alpha") { status } }');
    assert.equal(alive.data.tenant.status, 'ACTIVE');
    const p = await t.gql(`mutation { provisionTenant(input: { slug: "gamma", displayName: "g" }) { tenant { slug status } userErrors { code } } }`, {}, keys.admin);
    assert.equal(p.data.provisionTenant.tenant.status, 'ACTIVE');
    const d = await t.gql(`mutation { deprovisionTenant(input: { slug: "gamma", confirm: "gamma" }) { tenant { status } } }`, {}, keys.admin);
    assert.equal(d.data.deprovisionTenant.tenant.status, 'DEPROVISIONED');
  });

  test('createApiKey: admins any; a tenant admin only for its tenant; a reader none', async () => {
    const own = await createKey({ name: 'alpha ci', role: 'TENANT_READER', tenantSlug: 'alpha' }, keys.adminA);
    assert.match(own.key, /^tnry_[0-9a-f]{64}$/);
    const other = await t.gql(CREATE_KEY, { input: { name: 'sneaky', role: 'TENANT_READER', tenantSlug: 'beta' } }, keys.adminA);
    assert.deepEqual(other.data.createApiKey.userErrors.map((e: any) => [e.code, e.field]), [['NOT_FOUND', 'tenantSlug']]);
    assert.equal(other.data.createApiKey.key, null);
    const escalate = await t.gql(CREATE_KEY, { input: { name: 'root', role: 'ADMIN' } }, keys.adminA);
    assert.deepEqual(escalate.data.createApiKey.userErrors.map((e: any) => e.code), ['FORBIDDEN']);
    assert.equal(code(await t.gql(CREATE_KEY, { input: { name: 'r', role: 'TENANT_READER', tenantSlug: 'alpha' } }, keys.readerA)), 'FORBIDDEN');
    const noTenant = await t.gql(CREATE_KEY, { input: { name: 'r', role: 'TENANT_READER' } }, keys.admin);
    assert.deepEqual(noTenant.data.createApiKey.userErrors.map((e: any) => [e.code, e.field]), [['INVALID_INPUT', 'tenantSlug']]);
    const past = await t.gql(CREATE_KEY, { input: { name: 'old', role: 'ADMIN', expiresAt: '2020-01-01T00:00:00Z' } }, keys.admin);
    assert.deepEqual(past.data.createApiKey.userErrors.map((e: any) => e.code), ['INVALID_INPUT']);
    // The new key works, for its tenant only.
    const seen = await t.gql('{ tenants(first: 5) { edges { node { slug } } } }', {}, own.key);
    assert.deepEqual(seen.data.tenants.edges.map((e: any) => e.node.slug), ['alpha']);
  });

  test('revokeApiKey: a tenant admin revokes its own keys only, and a revoked key stops working at once', async () => {
    const mine = await createKey({ name: 'alpha temp', role: 'TENANT_READER', tenantSlug: 'alpha' });
    const theirs = await createKey({ name: 'beta temp', role: 'TENANT_READER', tenantSlug: 'beta' });
    const denied = await t.gql(REVOKE_KEY, { input: { id: theirs.apiKey.id } }, keys.adminA);
    assert.deepEqual(denied.data.revokeApiKey.userErrors.map((e: any) => e.code), ['NOT_FOUND']);
    assert.equal(code(await t.gql(REVOKE_KEY, { input: { id: mine.apiKey.id } }, keys.readerA)), 'FORBIDDEN');
    assert.equal((await t.gql('{ viewer { role } }', {}, mine.key)).data.viewer.role, 'TENANT_READER');
    const ok = await t.gql(REVOKE_KEY, { input: { id: mine.apiKey.id } }, keys.adminA);
    assert.deepEqual(ok.data.revokeApiKey.userErrors, []);
    assert.equal(code(await t.gql('{ viewer { role } }', {}, mine.key)), 'UNAUTHENTICATED');
    assert.equal((await t.gql('{ viewer { role } }', {}, theirs.key)).data.viewer.role, 'TENANT_READER');
    const garbage = await t.gql(REVOKE_KEY, { input: { id: 'not-a-global-id' } }, keys.admin);
    assert.deepEqual(garbage.data.revokeApiKey.userErrors.map((e: any) => e.code), ['NOT_FOUND']);
  });
});

test('no key text is ever stored in the control database or written to the logs', async () => {
  const control = new pg.Client({ connectionString: withDatabase(process.env.TEST_DATABASE_URL!, t.controlDatabase) });
  await control.connect();
  try {
    const { rows: tables } = await control.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`);
    let dump = '';
    for (const { tablename } of tables) {
      const { rows } = await control.query(`SELECT row_to_json(x)::text AS j FROM public.${JSON.stringify(tablename)} x`);
      dump += rows.map((r) => r.j).join('\n');
    }
    assert.ok(dump.includes(keys.readerA.slice(0, 11)), 'the dump holds key prefixes, so it is the right data');
    assert.ok(issuedKeys.length >= 8);
    for (const key of issuedKeys) {
      assert.ok(!dump.includes(key), 'a key is stored in the control database');
      assert.ok(!dump.includes(key.slice(5)), 'a key body is stored in the control database');
    }
  } finally {
    await control.end();
  }
  const logs = t.logs.join('');
  assert.ok(logs.length > 0);
  for (const key of issuedKeys) assert.ok(!logs.includes(key.slice(5)), 'a key reached the logs');
});
