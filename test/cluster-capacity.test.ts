import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { controlPlaneConnections } from '../src/platform/db/connection-budget.js';
import { FEW_DEFAULT_TENANTS } from '../src/modules/quotas/cluster-capacity.js';
import { PROVISION, startTestTenantry, testServerUrl, type TestTenantry } from './support/test-tenantry.js';
import pg from 'pg';

// Stock PostgreSQL (max_connections 100) serves 100 − 3 superuser-reserved − Tenantry's own
// connections ≈ 71 tenant connections: one tenant at DEFAULT_MAX_CONNECTIONS 50. The test
// server's max_connections differs (the embedded one allows 500), so OVERCOMMIT_FACTOR scales
// its capacity to that of a stock server: CAPACITY tenant connections.
const CAPACITY = 63;
const DEFAULT = 50;
const QUOTA_MIN = 10;

let t: TestTenantry;
let usable: number;
before(async () => {
  const probe = new pg.Client({ connectionString: testServerUrl() });
  await probe.connect();
  const { rows } = await probe.query(
    `SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
            - coalesce(current_setting('reserved_connections', true)::int, 0) AS usable`,
  );
  await probe.end();
  usable = rows[0].usable - controlPlaneConnections(true);
  // floor(usable × factor) = CAPACITY exactly, whatever the server.
  const factor = (CAPACITY + 0.5) / usable;
  t = await startTestTenantry({ env: { OVERCOMMIT_FACTOR: String(factor), DEFAULT_MAX_CONNECTIONS: String(DEFAULT), QUOTA_MIN: String(QUOTA_MIN) } });
});
after(() => t?.cleanup());

async function advice() {
  const cluster = await t.app.parts.clusters.ensureDefault();
  return t.app.parts.capacity.capacityAdvice(cluster);
}

async function provision(slug: string, maxConnections?: number) {
  const r = await t.gql(PROVISION, { input: { slug, displayName: slug, ...(maxConnections ? { maxConnections } : {}) } });
  return r.data.provisionTenant as { tenant: { status: string } | null; userErrors: { code: string; field: string | null; message: string }[] };
}

test('an empty stock-sized cluster: one default tenant fits, and the advice warns about it', async () => {
  const a = await advice();
  assert.equal(a.capacity.capacity, CAPACITY);
  assert.equal(a.defaultTenantsFit, 1);
  assert.equal(a.moreDefaultTenantsFit, 1);
  assert.ok(a.defaultTenantsFit < FEW_DEFAULT_TENANTS);
  assert.match(a.summary, new RegExp(`can serve ${CAPACITY} tenant connections \\(\\(max_connections \\d+ .* for Tenantry\\) × OVERCOMMIT_FACTOR [\\d.]+\\): 1 tenant at DEFAULT_MAX_CONNECTIONS ${DEFAULT}; 0 allocated, room for 1 more`));
  assert.match(a.warning ?? '', /fits only 1 tenant at DEFAULT_MAX_CONNECTIONS 50 .*raise max_connections on the server, lower DEFAULT_MAX_CONNECTIONS .*raise OVERCOMMIT_FACTOR/);
});

test('the second default tenant is refused naming DEFAULT_MAX_CONNECTIONS and OVERCOMMIT_FACTOR, not a maxConnections nobody sent', async () => {
  assert.deepEqual((await provision('first')).userErrors, []);
  const second = await provision('second');
  assert.equal(second.tenant, null);
  assert.equal(second.userErrors.length, 1);
  const [e] = second.userErrors;
  assert.equal(e!.code, 'CLUSTER_CAPACITY_EXCEEDED');
  assert.equal(e!.field, null, 'the caller sent no maxConnections');
  assert.match(e!.message, /DEFAULT_MAX_CONNECTIONS 50/);
  assert.match(e!.message, /OVERCOMMIT_FACTOR/);
  assert.match(e!.message, new RegExp(`${DEFAULT} are allocated to other tenants, so second cannot have DEFAULT_MAX_CONNECTIONS 50: pass maxConnections of at most ${CAPACITY - DEFAULT}`));

  const a = await advice();
  assert.equal(a.allocated, DEFAULT);
  assert.equal(a.moreDefaultTenantsFit, 0);
});

test('an explicit maxConnections that does not fit: the most it can have, on the maxConnections field', async () => {
  const r = await provision('explicit', 20);
  assert.deepEqual(r.userErrors.map((e) => [e.code, e.field]), [['CLUSTER_CAPACITY_EXCEEDED', 'maxConnections']]);
  assert.match(r.userErrors[0]!.message, new RegExp(`so explicit can have at most ${CAPACITY - DEFAULT}, not 20$`));
  assert.deepEqual((await provision('explicit', CAPACITY - DEFAULT)).userErrors, []);
});

test('with less room left than QUOTA_MIN, no maximum is suggested: the tenant cannot be placed', async () => {
  // The cluster is full now (63 of 63): 0 left, below QUOTA_MIN.
  for (const [slug, quota] of [['tiny', QUOTA_MIN], ['defaulted', undefined]] as const) {
    const r = await provision(slug, quota);
    assert.equal(r.userErrors[0]!.code, 'CLUSTER_CAPACITY_EXCEEDED');
    assert.match(r.userErrors[0]!.message, new RegExp(`leaving 0, below QUOTA_MIN ${QUOTA_MIN}: ${slug} \\(.*\\) cannot be placed on this cluster`));
    assert.doesNotMatch(r.userErrors[0]!.message, /at most/);
  }
  const a = await advice();
  assert.equal(a.moreDefaultTenantsFit, 0);
  assert.match(a.warning ?? '', /fits only 1 tenant/);
});

test('a roomy cluster: no warning, and the figures say how many fit', async () => {
  const roomy = await startTestTenantry({ env: { OVERCOMMIT_FACTOR: String((10 * DEFAULT + 0.5) / usable), DEFAULT_MAX_CONNECTIONS: String(DEFAULT) } });
  try {
    const a = await roomy.app.parts.capacity.capacityAdvice(await roomy.app.parts.clusters.ensureDefault());
    assert.equal(a.defaultTenantsFit, 10);
    assert.equal(a.moreDefaultTenantsFit, 10);
    assert.equal(a.warning, null);
  } finally {
    await roomy.cleanup();
  }
});
