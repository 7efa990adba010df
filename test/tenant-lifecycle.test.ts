import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connectAs, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

let t: TestTenantry;
before(async () => {
  t = await startTestTenantry();
});
after(() => t.cleanup());

const provision = async (slug: string) => (await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5 } })).data.provisionTenant;

test('suspendTenant locks the role out and ends its sessions; resumeTenant lets it back in', async () => {
  const p = await provision('sleepy');
  const session = await connectAs(p.connectionString);
  const ended = new Promise((r) => session.once('error', r));
  const s = await t.gql(`mutation { suspendTenant(input: { slug: "sleepy", reason: "unpaid invoice" }) { tenant { status } userErrors { code } } }`);
  assert.deepEqual(s.data.suspendTenant, { tenant: { status: 'SUSPENDED' }, userErrors: [] });
  await ended;
  await assert.rejects(connectAs(p.connectionString), (err: { code?: string }) => err.code === '28000');
  const audit = await t.gql(`{ auditEvents(first: 1, filter: { tenantSlug: "sleepy" }) { edges { node { action metadata } } } }`);
  assert.deepEqual(audit.data.auditEvents.edges[0].node, { action: 'tenant.suspended', metadata: { reason: 'unpaid invoice', terminateConnections: true } });

  const r = await t.gql(`mutation { resumeTenant(input: { slug: "sleepy" }) { tenant { status } userErrors { code } } }`);
  assert.deepEqual(r.data.resumeTenant, { tenant: { status: 'ACTIVE' }, userErrors: [] });
  const again = await connectAs(p.connectionString);
  await again.end();
});

test('rotateTenantCredentials returns a new password once; the old one stops working where the server checks passwords', async () => {
  const p = await provision('rotating');
  const key = (await t.gql(`mutation { createApiKey(input: { name: "r", role: TENANT_ADMIN, tenantSlug: "rotating" }) { key } }`)).data.createApiKey.key;
  const r = await t.gql(`mutation { rotateTenantCredentials(input: { slug: "rotating" }) { connectionString pooledConnectionString userErrors { code } } }`, {}, key);
  const rotated = r.data.rotateTenantCredentials;
  assert.deepEqual(rotated.userErrors, []);
  assert.notEqual(rotated.connectionString, p.connectionString);
  assert.equal(rotated.pooledConnectionString, null, 'POOLER=none');
  const fresh = await connectAs(rotated.connectionString);
  await fresh.end();
  // Servers that trust local connections (the machine's PostgreSQL 15) accept any password.
  const checksPasswords = await connectAs(p.connectionString.replace(/:[^:@/]+@/, ':wrong@')).then(
    async (c) => (await c.end(), false),
    () => true,
  );
  if (checksPasswords) await assert.rejects(connectAs(p.connectionString), (err: { code?: string }) => err.code === '28P01');

  await provision('bystander');
  const other = await t.gql(`mutation { rotateTenantCredentials(input: { slug: "bystander" }) { userErrors { code } } }`, {}, key);
  assert.deepEqual(other.data.rotateTenantCredentials.userErrors, [{ code: 'NOT_FOUND' }]);
  const reader = (await t.gql(`mutation { createApiKey(input: { name: "ro", role: TENANT_READER, tenantSlug: "rotating" }) { key } }`)).data.createApiKey.key;
  const refused = await t.gql(`mutation { rotateTenantCredentials(input: { slug: "rotating" }) { userErrors { code } } }`, {}, reader);
  assert.equal(refused.errors?.[0]?.extensions?.code, 'FORBIDDEN');
  const audit = await t.gql(`{ auditEvents(first: 1, filter: { tenantSlug: "rotating", action: "tenant.credentials.rotated" }) { edges { node { actor } } } }`);
  // The key's name and id: never a character of the key.
  assert.match(audit.data.auditEvents.edges[0].node.actor, /^r \(apikey:[0-9a-f-]{36}\)$/);
});

test('schemaVersions lists every recorded component', async () => {
  const r = await t.gql(`{ tenant(slug: "sleepy") { schemaVersions { component version compatibility } } }`);
  assert.deepEqual(r.data.tenant.schemaVersions, [{ component: 'Tenant', version: '1.1.0', compatibility: 'COMPATIBLE' }]);
});
