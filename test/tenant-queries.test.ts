import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { fewestStatements, PROVISION, settle, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

let t: TestTenantry;
const slugs = ['delta', 'alpha', 'golf', 'bravo', 'echo', 'charlie', 'foxtrot'];

before(async () => {
  t = await startTestTenantry();
  for (const slug of slugs) {
    const r = await t.gql(PROVISION, { input: { slug, displayName: `Company ${slug.toUpperCase()}`, maxConnections: 10 + slugs.indexOf(slug) } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
  }
});
after(() => t.cleanup());

const PAGE = `query($first: Int, $after: String, $last: Int, $before: String, $orderBy: TenantOrder, $filter: TenantFilter) {
  tenants(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy, filter: $filter) {
    edges { cursor node { slug } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

test('tenants pages forward and backward through a stable keyset order', async () => {
  const seen: string[] = [];
  let after: string | null = null;
  for (;;) {
    const r: any = await t.gql(PAGE, { first: 3, after });
    seen.push(...r.data.tenants.edges.map((e: any) => e.node.slug));
    if (!r.data.tenants.pageInfo.hasNextPage) break;
    after = r.data.tenants.pageInfo.endCursor;
  }
  assert.deepEqual(seen, [...slugs].sort());

  const last = await t.gql(PAGE, { last: 2 });
  assert.deepEqual(last.data.tenants.edges.map((e: any) => e.node.slug), ['foxtrot', 'golf']);
  const before = await t.gql(PAGE, { last: 2, before: last.data.tenants.pageInfo.startCursor });
  assert.deepEqual(before.data.tenants.edges.map((e: any) => e.node.slug), ['delta', 'echo']);
  assert.equal(before.data.tenants.pageInfo.hasPreviousPage, true);

  const bad = await t.gql(PAGE, { first: 2, after: 'not-a-cursor' });
  assert.equal(bad.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
});

test('tenants orders by creation time or display name, either way', async () => {
  const newest = await t.gql(PAGE, { first: 3, orderBy: { field: 'CREATED_AT', direction: 'DESC' } });
  assert.deepEqual(newest.data.tenants.edges.map((e: any) => e.node.slug), ['foxtrot', 'charlie', 'echo']);
  const next = await t.gql(PAGE, { first: 10, after: newest.data.tenants.pageInfo.endCursor, orderBy: { field: 'CREATED_AT', direction: 'DESC' } });
  assert.deepEqual(next.data.tenants.edges.map((e: any) => e.node.slug), ['bravo', 'golf', 'alpha', 'delta']);
  const byName = await t.gql(PAGE, { first: 2, orderBy: { field: 'DISPLAY_NAME', direction: 'DESC' } });
  assert.deepEqual(byName.data.tenants.edges.map((e: any) => e.node.slug), ['golf', 'foxtrot']);
});

test('tenants filters by text and status', async () => {
  const found = await t.gql(PAGE, { first: 10, filter: { search: 'company e' } });
  assert.deepEqual(found.data.tenants.edges.map((e: any) => e.node.slug), ['echo']);
  const failed = await t.gql(PAGE, { first: 10, filter: { status: ['FAILED'] } });
  assert.deepEqual(failed.data.tenants.edges, []);
});

test('listing a page costs the same few queries however many tenants it holds (DataLoader)', async () => {
  const q = `query($first: Int) { tenants(first: $first) { edges { node {
    slug quota { maxConnections } schemaVersion { version compatibility } cluster { name tenantCount allocatedConnections }
  } } } }`;
  const count = async (first: number) => {
    const { statements, result: r } = await fewestStatements(t, () => t.gql(q, { first }));
    assert.equal(r.errors, undefined);
    assert.equal(r.data.tenants.edges.length, first);
    return statements;
  };
  // The key is cached after its first use, and background work (the inventory of new tenants) is done.
  await t.gql('{ viewer { role } }');
  await settle(t);
  const two = await count(2);
  const seven = await count(7);
  assert.equal(seven, two, `a page of 7 took ${seven} queries, a page of 2 took ${two}`);
  // Key lookup, the page, quotas, schema versions, clusters, cluster allocations (twice: two loadable fields).
  assert.ok(seven <= 8, `${seven} queries for one page`);
});

test('node(id) resolves tenants and clusters by global id', async () => {
  const r = await t.gql('{ tenants(first: 1) { edges { node { id slug cluster { id } } } } }');
  const tenant = r.data.tenants.edges[0].node;
  const byId = await t.gql('query($a: ID!, $b: ID!) { a: node(id: $a) { ... on Tenant { slug } } b: node(id: $b) { ... on Cluster { name } } }', { a: tenant.id, b: tenant.cluster.id });
  assert.deepEqual(byId.data, { a: { slug: tenant.slug }, b: { name: 'default' } });
  const junk = await t.gql('{ node(id: "VGVuYW50Om5vdC1hLXV1aWQ=") { id } }');
  assert.equal(junk.errors, undefined);
  assert.equal(junk.data.node, null);
});

test('an unexpected failure reaches the client masked, with a correlation id that finds the log line', async () => {
  const control = new pg.Client({ connectionString: withDatabase(process.env.TEST_DATABASE_URL!, t.controlDatabase) });
  await control.connect();
  try {
    await control.query('ALTER TABLE quotas RENAME TO quotas_away');
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.adminKey}`, 'x-correlation-id': 'test-corr-42' },
      body: JSON.stringify({ query: '{ tenants(first: 2) { edges { node { slug quota { maxConnections } } } } }' }),
    });
    assert.equal(res.headers.get('x-correlation-id'), 'test-corr-42');
    const body = (await res.json()) as any;
    const error = body.errors[0];
    assert.equal(error.extensions.code, 'INTERNAL_SERVER_ERROR');
    assert.equal(error.extensions.correlationId, 'test-corr-42');
    assert.equal(error.message, 'Unexpected error; correlation id test-corr-42');
    assert.ok(!JSON.stringify(body).includes('quotas'), 'no internals leak to the client');
    const line = t.logs.find((l) => l.includes('test-corr-42') && l.includes('unexpected error'));
    assert.ok(line, 'the real error is logged under the correlation id');
    assert.match(line!, /quotas/);
  } finally {
    await control.query('ALTER TABLE quotas_away RENAME TO quotas');
    await control.end();
  }
});

test('tenants without first or last is a page of 20, never the whole fleet', async () => {
  for (let i = 0; i < 14; i++) {
    const r = await t.gql(PROVISION, { input: { slug: `zz-${String(i).padStart(2, '0')}`, displayName: 'more', maxConnections: 2 } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
  }
  for (const [query, variables] of [
    ['{ tenants { edges { node { slug } } pageInfo { hasNextPage hasPreviousPage } } }', {}],
    ['query($first: Int) { tenants(first: $first) { edges { node { slug } } pageInfo { hasNextPage hasPreviousPage } } }', { first: null }],
  ] as const) {
    const r = await t.gql(query, variables);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    assert.equal(r.data.tenants.edges.length, 20, `${query} ${JSON.stringify(variables)}: ${r.data.tenants.edges.length} of 21 tenants`);
    assert.equal(r.data.tenants.pageInfo.hasNextPage, true);
  }
  const last = await t.gql('{ tenants(last: null) { edges { node { slug } } } }');
  assert.equal(last.data.tenants.edges.length, 20);
});
