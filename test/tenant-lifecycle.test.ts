import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { connectAs, PROVISION, startTestTenantry, testServerUrl, type TestTenantry } from './support/test-tenantry.js';
import { until } from './support/subscriptions.js';

let t: TestTenantry;
/** A deprovisioning held at its first step (after DEPROVISIONING is recorded, holding the tenant's lock) until the test lets it go. */
let holdDeprovision: { reached: () => void; gate: Promise<void> } | null = null;
before(async () => {
  t = await startTestTenantry({
    env: { RECOVERY_INTERVAL_MS: '0' },
    failpoints: {
      'provision.before:DATABASE': ({ tenantSlug }) => {
        if (tenantSlug === 'never-ready') throw new Error('injected failure before DATABASE');
      },
      'deprovision.recorded': async () => {
        if (!holdDeprovision) return;
        const { reached, gate } = holdDeprovision;
        holdDeprovision = null;
        reached();
        await gate;
      },
    },
  });
});
after(() => t.cleanup());

const provision = async (slug: string) => (await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5 } })).data.provisionTenant;

test('suspendTenant locks the role out and ends its sessions (only the tenant\'s: an operator\'s session in its database stays); resumeTenant lets it back in', async () => {
  const p = await provision('sleepy');
  const session = await connectAs(p.connectionString);
  const ended = new Promise((r) => session.once('error', r));
  // A superuser's session in the tenant's database: not the tenant's to lose (and a
  // least-privilege control plane may not end it: ending it failed the whole suspension).
  const operator = new pg.Client({ connectionString: withDatabase(testServerUrl(), p.tenant.databaseName) });
  operator.on('error', () => undefined);
  await operator.connect();
  try {
    const s = await t.gql(`mutation { suspendTenant(input: { slug: "sleepy", reason: "unpaid invoice" }) { tenant { status } userErrors { code } } }`);
    assert.deepEqual(s.data?.suspendTenant, { tenant: { status: 'SUSPENDED' }, userErrors: [] }, JSON.stringify(s.errors));
    await ended;
    assert.equal((await operator.query('SELECT 1 AS one')).rows[0].one, 1, 'the operator\'s session is still there');
  } finally {
    await operator.end().catch(() => undefined);
  }
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

/** The four calls that need a settled tenant, each as `[field, its userErrors]`. */
async function stateBoundCalls(slug: string): Promise<[string, { code: string; message: string }[]][]> {
  const calls: [string, string][] = [
    ['updateTenantQuota', `mutation($slug: String!) { updateTenantQuota(input: { slug: $slug, maxConnections: 7 }) { userErrors { code message } } }`],
    ['rotateTenantCredentials', `mutation($slug: String!) { rotateTenantCredentials(input: { slug: $slug }) { userErrors { code message } } }`],
    ['suspendTenant', `mutation($slug: String!) { suspendTenant(input: { slug: $slug }) { userErrors { code message } } }`],
    ['resumeTenant', `mutation($slug: String!) { resumeTenant(input: { slug: $slug }) { userErrors { code message } } }`],
  ];
  return Promise.all(
    calls.map(async ([field, query]) => {
      const r = await t.gql(query, { slug });
      assert.equal(r.errors, undefined, `${field}: ${JSON.stringify(r.errors)}`);
      return [field, r.data[field].userErrors] as [string, { code: string; message: string }[]];
    }),
  );
}

test('a tenant whose provisioning FAILED: quota, rotate, suspend and resume answer INVALID_STATE naming the state, not TENANT_BUSY', async () => {
  const r = await t.gql(PROVISION, { input: { slug: 'never-ready', displayName: 'n', maxConnections: 5 } });
  assert.deepEqual(r.data.provisionTenant.userErrors.map((e: { code: string }) => e.code), ['PROVISIONING_FAILED']);
  for (const [field, errors] of await stateBoundCalls('never-ready')) {
    assert.deepEqual(errors.map((e) => e.code), ['INVALID_STATE'], `${field}: ${JSON.stringify(errors)}`);
    assert.match(errors[0]!.message, /tenant never-ready is FAILED \(provisioning it again completes it\)/, field);
  }
});

test('deprovisioned while they waited for its lock: quota, rotate, suspend and resume answer INVALID_STATE (DEPROVISIONED), not a TENANT_BUSY to retry forever', async () => {
  await provision('going');
  let reached!: () => void;
  let release!: () => void;
  const there = new Promise<void>((r) => (reached = r));
  holdDeprovision = { reached, gate: new Promise<void>((r) => (release = r)) };
  const gone = t.gql(`mutation { deprovisionTenant(input: { slug: "going", confirm: "going" }) { tenant { status } userErrors { code } } }`);
  await there;
  // All four wait for the tenant's lock, which the deprovisioning holds.
  const calls = stateBoundCalls('going');
  await until(
    async () =>
      Number(
        (
          await t.admin.query(
            `SELECT count(*) AS n FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = $1`,
            [t.controlDatabase],
          )
        ).rows[0].n,
      ),
    (n) => n === 4,
    'the four calls to wait for the tenant lock',
  );
  release();
  assert.deepEqual((await gone).data.deprovisionTenant, { tenant: { status: 'DEPROVISIONED' }, userErrors: [] });
  for (const [field, errors] of await calls) {
    assert.deepEqual(errors.map((e) => e.code), ['INVALID_STATE'], `${field}: ${JSON.stringify(errors)}`);
    assert.match(errors[0]!.message, /tenant going is DEPROVISIONED; .* needs it ACTIVE or SUSPENDED/, field);
  }
  // Asked again, it is simply gone.
  for (const [field, errors] of await stateBoundCalls('going')) assert.deepEqual(errors.map((e) => e.code), ['NOT_FOUND'], field);
});
