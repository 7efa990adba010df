// @test-slow: started first (scripts/run-tests.ts)
// @test-scope once: the GraphQL schema's shapes (pages, errors, ids): the same on any server and with any privileges.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { MUTATION_ERROR_CODES } from '../src/graphql/mutation-errors.js';
import { withUserErrors } from '../src/graphql/user-errors.js';
import { UserError } from '../src/platform/errors.js';
import { until } from './support/subscriptions.js';
import { connectAs, fewestStatements, PROVISION, settle, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

// The schema a dashboard builds on (issue 16): named connections with totalCount, apiKeys, Session,
// …At timestamps, enums for closed sets, and the filters.

let t: TestTenantry;
const connectionStrings = new Map<string, string>();
const sessions: pg.Client[] = [];

async function createKey(input: Record<string, unknown>, as = t.adminKey): Promise<{ key: string; id: string }> {
  const r = await t.gql(`mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id } userErrors { code message } } }`, { input }, as);
  assert.deepEqual(r.data.createApiKey.userErrors, []);
  return { key: r.data.createApiKey.key, id: r.data.createApiKey.apiKey.id };
}

before(async () => {
  t = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200', USAGE_IDLE_SAMPLE_MS: '200' } });
  for (const [slug, maxConnections] of [['alpha', 2], ['bravo', 10], ['charlie', 10]] as const) {
    const r = await t.gql(PROVISION, { input: { slug, displayName: `Company ${slug}`, maxConnections } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
    connectionStrings.set(slug, r.data.provisionTenant.connectionString);
  }
  const quota = await t.gql(`mutation { updateTenantQuota(input: { slug: "bravo", maxConnections: 12, reason: "shape" }) { userErrors { code } } }`);
  assert.deepEqual(quota.data.updateTenantQuota.userErrors, []);
});
after(async () => {
  for (const c of sessions) await c.end().catch(() => undefined);
  await t.cleanup();
});

const slugsOf = (connection: any) => connection.edges.map((e: any) => e.node.slug);

describe('connections are named for what they hold and count their rows', () => {
  test('TenantConnection: totalCount across pages, with the filter and the caller\'s access', async () => {
    const page = await t.gql(`{ tenants(first: 1) { __typename totalCount edges { __typename node { slug } } pageInfo { hasNextPage } } }`);
    assert.equal(page.data.tenants.__typename, 'TenantConnection');
    assert.equal(page.data.tenants.edges[0].__typename, 'TenantEdge');
    assert.deepEqual([page.data.tenants.totalCount, slugsOf(page.data.tenants).length, page.data.tenants.pageInfo.hasNextPage], [3, 1, true]);

    const searched = await t.gql(`{ tenants(first: 10, filter: { search: "company b" }) { totalCount edges { node { slug } } } }`);
    assert.deepEqual([searched.data.tenants.totalCount, slugsOf(searched.data.tenants)], [1, ['bravo']]);

    const reader = await createKey({ name: 'alpha reader', role: 'TENANT_READER', tenantSlug: 'alpha' });
    const own = await t.gql(`{ tenants(first: 10) { totalCount edges { node { slug } } } }`, {}, reader.key);
    assert.deepEqual([own.data.tenants.totalCount, slugsOf(own.data.tenants)], [1, ['alpha']]);
  });

  test('totalCount costs one COUNT, and only when it is selected', async () => {
    await settle(t);
    const without = await fewestStatements(t, () => t.gql(`{ tenants(first: 2) { edges { node { slug } } } }`), 10);
    const withCount = await fewestStatements(t, () => t.gql(`{ tenants(first: 2) { totalCount edges { node { slug } } } }`), 10);
    assert.equal(withCount.statements, without.statements + 1);
  });

  test('AuditEventConnection is shared by Query.auditEvents and Tenant.auditEvents; a page of tenants counts their trails in one query', async () => {
    const all = await t.gql(`{ auditEvents(first: 1, filter: { tenantSlug: "bravo" }) { __typename totalCount edges { __typename } } }`);
    assert.equal(all.data.auditEvents.__typename, 'AuditEventConnection');
    assert.equal(all.data.auditEvents.edges[0].__typename, 'AuditEventEdge');
    const onTenant = await t.gql(`{ tenant(slug: "bravo") { auditEvents(first: 1) { __typename totalCount } } }`);
    assert.equal(onTenant.data.tenant.auditEvents.__typename, 'AuditEventConnection');
    assert.ok(all.data.auditEvents.totalCount >= 2, 'provisioned and quota.updated at least');
    assert.equal(onTenant.data.tenant.auditEvents.totalCount, all.data.auditEvents.totalCount);

    await settle(t);
    const TRAILS = (first: number) => `{ tenants(first: ${first}) { edges { node { auditEvents(first: 1) { totalCount } } } } }`;
    const one = await fewestStatements(t, () => t.gql(TRAILS(1)), 10);
    const three = await fewestStatements(t, () => t.gql(TRAILS(3)), 10);
    assert.equal(three.statements, one.statements, 'the same statements for 3 tenants as for 1');
    const counts = three.result.data.tenants.edges.map((e: any) => e.node.auditEvents.totalCount);
    assert.equal(counts.length, 3);
    assert.ok(counts.every((c: number) => c >= 1));
  });

  test('OperationConnection filters by status and kind, and counts what it filters', async () => {
    const base = { params: { template: 'default', targetVersion: null }, total: 0, canarySize: 0, concurrency: 1, createdBy: 'test' };
    await t.app.parts.db.operation.createMany({
      data: [
        { ...base, id: randomUUID(), kind: 'UPGRADE_SCHEMAS', status: 'SUCCEEDED' },
        { ...base, id: randomUUID(), kind: 'UPGRADE_SCHEMAS', status: 'FAILED' },
        { ...base, id: randomUUID(), kind: 'SECURE_TENANTS', status: 'SUCCEEDED' },
      ],
    });
    const OPS = `query($filter: OperationFilter) { operations(first: 1, filter: $filter) { __typename totalCount edges { __typename node { kind status } } } }`;
    const every = await t.gql(OPS);
    assert.deepEqual([every.data.operations.__typename, every.data.operations.edges[0].__typename], ['OperationConnection', 'OperationEdge']);
    assert.equal(every.data.operations.totalCount, 3);
    const succeeded = await t.gql(OPS, { filter: { status: ['SUCCEEDED'] } });
    assert.equal(succeeded.data.operations.totalCount, 2);
    const upgrades = await t.gql(OPS, { filter: { status: ['SUCCEEDED'], kind: ['UPGRADE_SCHEMAS'] } });
    assert.equal(upgrades.data.operations.totalCount, 1);
    assert.deepEqual(upgrades.data.operations.edges[0].node, { kind: 'UPGRADE_SCHEMAS', status: 'SUCCEEDED' });
  });
});

describe('apiKeys', () => {
  test('an ADMIN sees every key, a TENANT_ADMIN the keys it made, a TENANT_READER is refused; revoked keys only when asked', async () => {
    const tenantAdmin = await createKey({ name: 'charlie admin', role: 'TENANT_ADMIN', tenantSlug: 'charlie' });
    const made = await createKey({ name: 'made by charlie admin', role: 'TENANT_READER', tenantSlug: 'charlie' }, tenantAdmin.key);
    const byAdmin = await createKey({ name: 'charlie reader by admin', role: 'TENANT_READER', tenantSlug: 'charlie' });
    const KEYS = `query($filter: ApiKeyFilter) { apiKeys(first: 10, filter: $filter) {
      __typename totalCount edges { __typename node { id name role tenant { slug } createdAt createdBy lastUsedAt expiresAt revokedAt keyPrefix } } } }`;
    const names = (r: any) => r.data.apiKeys.edges.map((e: any) => e.node.name);

    const admin = await t.gql(KEYS, { filter: { tenantSlug: 'charlie' } });
    assert.deepEqual([admin.data.apiKeys.__typename, admin.data.apiKeys.edges[0].__typename], ['ApiKeyConnection', 'ApiKeyEdge']);
    assert.deepEqual(names(admin), ['charlie reader by admin', 'made by charlie admin', 'charlie admin'], 'newest first');
    assert.equal(admin.data.apiKeys.totalCount, 3);
    assert.deepEqual(admin.data.apiKeys.edges[2].node.tenant, { slug: 'charlie' });
    assert.equal(admin.data.apiKeys.edges[2].node.role, 'TENANT_ADMIN');
    const everything = await t.gql(KEYS);
    assert.ok(everything.data.apiKeys.totalCount > 3, 'and the keys of other tenants, and ADMIN keys');

    const mine = await t.gql(KEYS, {}, tenantAdmin.key);
    assert.deepEqual([names(mine), mine.data.apiKeys.totalCount], [['made by charlie admin'], 1]);

    const reader = await t.gql(KEYS, {}, byAdmin.key);
    assert.equal(reader.errors?.[0]?.extensions?.code, 'FORBIDDEN');

    const revoked = await t.gql(`mutation($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) { userErrors { code } } }`, { input: { id: made.id } }, tenantAdmin.key);
    assert.deepEqual(revoked.data.revokeApiKey.userErrors, []);
    assert.deepEqual(names(await t.gql(KEYS, {}, tenantAdmin.key)), []);
    const withRevoked = await t.gql(KEYS, { filter: { includeRevoked: true } }, tenantAdmin.key);
    assert.deepEqual(names(withRevoked), ['made by charlie admin']);
    assert.ok(withRevoked.data.apiKeys.edges[0].node.revokedAt);

    const pages: string[] = [];
    let after: string | null = null;
    do {
      const r: any = await t.gql(`query($after: String) { apiKeys(first: 1, after: $after, filter: { tenantSlug: "charlie", includeRevoked: true }) { edges { node { name } } pageInfo { hasNextPage endCursor } } }`, { after });
      pages.push(...names(r));
      after = r.data.apiKeys.pageInfo.hasNextPage ? r.data.apiKeys.pageInfo.endCursor : null;
    } while (after);
    assert.deepEqual(pages, ['charlie reader by admin', 'made by charlie admin', 'charlie admin'], 'paged one at a time');

    const fields = await t.gql(`{ __type(name: "ApiKey") { fields { name } } }`);
    assert.ok(!fields.data.__type.fields.some((f: any) => /hash/i.test(f.name)), 'never the hash');
  });
});

describe('sessions, timestamps and enums', () => {
  test('Session with a SessionState, SessionStateCount, and the usage band filter', async () => {
    for (let i = 0; i < 2; i++) sessions.push(await connectAs(connectionStrings.get('alpha')!));
    const live = await t.gql(`{ tenant(slug: "alpha") { connections { __typename pid state backendStart queryStart } } }`);
    const rows = live.data.tenant.connections;
    assert.equal(rows.length, 2);
    assert.ok(rows.every((r: any) => r.__typename === 'Session' && r.state === 'IDLE' && !Number.isNaN(Date.parse(r.backendStart))));

    const usage = await until(
      async () => (await t.gql(`{ tenant(slug: "alpha") { usage { usagePercent byState { __typename state count } } } }`)).data.tenant.usage,
      (u: any) => u?.usagePercent === 100,
      'alpha at 100 %',
    );
    assert.deepEqual(usage.byState, [{ __typename: 'SessionStateCount', state: 'IDLE', count: 2 }]);

    const BAND = `query($above: Float) { tenants(first: 10, filter: { usagePercentAbove: $above }) { totalCount edges { node { slug } } } }`;
    // The sample reaches tenant_usage (which the filter reads) just after it is published; the
    // page and its totalCount are two reads, so one answer can fall on either side of that write.
    const hot = await until(async () => (await t.gql(BAND, { above: 90 })).data.tenants, (c: any) => c.totalCount > 0 && c.edges.length > 0, 'alpha in the band above 90 %');
    assert.deepEqual([hot.totalCount, slugsOf(hot)], [1, ['alpha']]);
    const band = await t.gql(BAND, { above: 50 });
    assert.deepEqual(slugsOf(band.data.tenants), ['alpha'], 'bravo and charlie, at 0 %, are below 50 %');
    const idle = await t.gql(BAND, { above: -1 });
    assert.deepEqual(slugsOf(idle.data.tenants), ['alpha', 'bravo', 'charlie'], 'every sampled ACTIVE tenant is above -1 %');
    const suspended = await t.gql(`mutation { suspendTenant(input: { slug: "alpha" }) { userErrors { code } } }`);
    assert.deepEqual(suspended.data.suspendTenant.userErrors, []);
    assert.deepEqual(slugsOf((await t.gql(BAND, { above: 90 })).data.tenants), [], 'only ACTIVE tenants');
    await t.gql(`mutation { resumeTenant(input: { slug: "alpha" }) { userErrors { code } } }`);
  });

  test('timestamps end in At', async () => {
    const r = await t.gql(`{
      tenant(slug: "bravo") { quota { history(first: 1) { changedAt } } usageHistory(range: HOUR) { minuteStartAt } }
      auditEvents(first: 1) { edges { node { occurredAt } } }
    }`);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const stamps = [r.data.tenant.quota.history[0].changedAt, r.data.auditEvents.edges[0].node.occurredAt, ...r.data.tenant.usageHistory.map((p: any) => p.minuteStartAt)];
    assert.ok(stamps.every((s: string) => !Number.isNaN(Date.parse(s))));
  });

  test('audit events filter by category, action, actor and time; closed sets are enums', async () => {
    const quota = await t.gql(`{ auditEvents(first: 5, filter: { category: QUOTA, tenantSlug: "bravo" }) { totalCount edges { node { category action actor occurredAt } } } }`);
    assert.equal(quota.data.auditEvents.totalCount, 1);
    const event = quota.data.auditEvents.edges[0].node;
    assert.deepEqual([event.category, event.action], ['QUOTA', 'quota.updated']);
    const FILTERED = `query($f: AuditEventFilter) { auditEvents(first: 50, filter: $f) { totalCount } }`;
    const count = async (f: Record<string, unknown>) => (await t.gql(FILTERED, { f })).data.auditEvents.totalCount;
    assert.equal(await count({ actor: event.actor, action: 'quota.updated', tenantSlug: 'bravo' }), 1);
    assert.equal(await count({ actor: 'apikey:nobody', tenantSlug: 'bravo' }), 0);
    const at = Date.parse(event.occurredAt);
    assert.equal(await count({ tenantSlug: 'bravo', category: 'QUOTA', occurredAfter: new Date(at).toISOString(), occurredBefore: new Date(at + 1).toISOString() }), 1);
    assert.equal(await count({ tenantSlug: 'bravo', category: 'QUOTA', occurredAfter: new Date(at + 1).toISOString() }), 0);
    assert.equal(await count({ tenantSlug: 'bravo', category: 'QUOTA', occurredBefore: new Date(at).toISOString() }), 0);
    const bad = await t.gql(`{ auditEvents(first: 1, filter: { category: "quota" }) { totalCount } }`);
    assert.equal(bad.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED', 'category is an enum');

    const r = await t.gql(`{
      health { mode }
      tenant(slug: "bravo") { provisioning { lastCompletedStep failedStep } }
    }`);
    assert.equal(r.data.health.mode, 'DEVELOPMENT');
    assert.deepEqual(r.data.tenant.provisioning, { lastCompletedStep: 'CREDENTIALS', failedStep: null });
    const report = await t.gql(`mutation { reconcilePools { report { pooler outcome } userErrors { code } } }`);
    assert.ok(['PGBOUNCER', 'NONE'].includes(report.data.reconcilePools.report.pooler));
    assert.equal(report.data.reconcilePools.report.outcome, 'IN_SYNC');

    // Every closed set the issue counted is an enum now (docs/changelog.md, 0.6.0, lists them).
    const closed: [string, string, string][] = [
      ['AuditEvent', 'category', 'AuditCategory'],
      ['BusyBackend', 'state', 'SessionState'],
      ['Session', 'state', 'SessionState'],
      ['SessionStateCount', 'state', 'SessionState'],
      ['Health', 'mode', 'ServerMode'],
      ['Pool', 'mode', 'PoolMode'],
      ['PoolReconciliation', 'outcome', 'PoolReconciliationOutcome'],
      ['PoolReconciliation', 'pooler', 'PoolerKind'],
      ['ProvisioningState', 'lastCompletedStep', 'ProvisionStep'],
      ['ProvisioningState', 'failedStep', 'ProvisionStep'],
    ];
    for (const [type, field, enumName] of closed) {
      const ty = await t.gql(`query($n: String!) { __type(name: $n) { fields { name type { kind name ofType { kind name } } } } }`, { n: type });
      const f = ty.data.__type.fields.find((x: any) => x.name === field);
      const named = f.type.kind === 'NON_NULL' ? f.type.ofType : f.type;
      assert.deepEqual([named.kind, named.name], ['ENUM', enumName], `${type}.${field}`);
    }
    const filterField = await t.gql(`{ __type(name: "AuditEventFilter") { inputFields { name type { kind name } } } }`);
    assert.deepEqual(filterField.data.__type.inputFields.find((f: any) => f.name === 'category').type, { kind: 'ENUM', name: 'AuditCategory' });
  });
});

describe('per-mutation error codes', () => {
  test('every mutation declares its codes, and its description lists them', async () => {
    const r = await t.gql(`{ __schema { mutationType { fields { name description } } } }`);
    const fields = r.data.__schema.mutationType.fields as { name: string; description: string }[];
    assert.deepEqual(fields.map((f) => f.name).sort(), Object.keys(MUTATION_ERROR_CODES).sort());
    for (const f of fields) {
      const codes = MUTATION_ERROR_CODES[f.name as keyof typeof MUTATION_ERROR_CODES];
      assert.ok(f.description.endsWith(`Error codes: ${codes.join(', ')}.`), `${f.name}: ${f.description}`);
    }
  });

  test('docs/api.md lists the same codes for every mutation', () => {
    const rows = [...readFileSync(new URL('../docs/api.md', import.meta.url), 'utf8').matchAll(/^\| `(\w+)` \| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \|$/gm)];
    const documented = Object.fromEntries(rows.map((m) => [m[1], m[2]!.replaceAll('`', '').split(', ')]));
    assert.deepEqual(documented, Object.fromEntries(Object.entries(MUTATION_ERROR_CODES).map(([m, codes]) => [m, [...codes]])));
  });

  test('withUserErrors answers a declared code and refuses an undeclared one', async () => {
    const declared = await withUserErrors<{ tenant: null }>('deprovisionTenant', { slug: 'x' }, async () => {
      throw new UserError('CONFIRMATION_MISMATCH', 'confirm must repeat the slug', 'confirm');
    });
    assert.deepEqual(declared.userErrors.map((e) => e.code), ['CONFIRMATION_MISMATCH']);
    await assert.rejects(
      withUserErrors<{ report: null }>('reconcilePools', {}, async () => {
        throw new UserError('NOT_FOUND', 'no such pool');
      }),
      /reconcilePools answered user error NOT_FOUND, which MUTATION_ERROR_CODES .* does not declare/,
    );
  });

  test('a running server answers a declared code in userErrors', async () => {
    const r = await t.gql(`mutation { deprovisionTenant(input: { slug: "charlie", confirm: "not charlie" }) { userErrors { code field } } }`);
    assert.deepEqual(r.data.deprovisionTenant.userErrors, [{ code: 'CONFIRMATION_MISMATCH', field: 'confirm' }]);
    assert.ok((MUTATION_ERROR_CODES.deprovisionTenant as readonly string[]).includes('CONFIRMATION_MISMATCH'));
  });
});
