import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { subscribeSse, subscribeWs, until, wsClient, type Collected } from './support/subscriptions.js';
import { connectAs, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

// Issue 14, item 12: ConnectionUsage had no id, so a normalised client cache (Apollo's
// `__typename:id`) never merged the stream into a watched `tenant { usage }`; and
// connectionUsageBatch opened with the tenants holding sessions only, so a dashboard had to
// merge a list and a stream.

let t: TestTenantry;
const credentials = new Map<string, string>();
const sessions: pg.Client[] = [];

/** Apollo Client's defaultDataIdFromObject: the key under which its cache normalises an object. */
function apolloCacheKey(o: { __typename: string; id?: unknown }): string | undefined {
  if (o.id === undefined) return undefined;
  return `${o.__typename}:${typeof o.id === 'string' || typeof o.id === 'number' ? o.id : JSON.stringify(o.id)}`;
}

async function provision(slug: string) {
  const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5 } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  credentials.set(slug, r.data.provisionTenant.connectionString);
}
async function open(slug: string): Promise<pg.Client> {
  const c = await connectAs(credentials.get(slug)!);
  sessions.push(c);
  return c;
}
async function keyFor(slug: string): Promise<string> {
  const r = await t.gql(`mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key } }`, { input: { name: `${slug} ${randomUUID().slice(0, 8)}`, role: 'TENANT_READER', tenantSlug: slug } });
  return r.data.createApiKey.key;
}

before(async () => {
  t = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200', USAGE_IDLE_SAMPLE_MS: '1000', GRAPHQL_MAX_PAGE_SIZE: '5' } });
  for (const slug of ['busy', 'quiet', 'paused', 'outside']) await provision(slug);
  const s = await t.gql(`mutation { suspendTenant(input: { slug: "paused" }) { userErrors { code } } }`);
  assert.deepEqual(s.data.suspendTenant.userErrors, []);
});
after(async () => {
  await Promise.all(sessions.map((c) => c.end().catch(() => undefined)));
  await t.cleanup();
});

describe('ConnectionUsage has an identity', () => {
  test('Tenant.usage, connectionUsage (one tenant and every tenant) and connectionUsageBatch give a tenant\'s usage the same __typename:id, another tenant a different one; node(id) reads it', async () => {
    const fields = `__typename id current`;
    const query = await t.gql(`{ busy: tenant(slug: "busy") { usage { ${fields} } } quiet: tenant(slug: "quiet") { usage { ${fields} } } }`);
    const queried = apolloCacheKey(query.data.busy.usage);
    assert.ok(queried?.startsWith('ConnectionUsage:'), `a cache key (${queried})`);
    assert.notEqual(apolloCacheKey(query.data.quiet.usage), queried, 'each tenant its own');

    const client = wsClient(t.url, t.adminKey);
    const one = subscribeWs(client, `subscription { connectionUsage(tenantSlug: "busy") { ${fields} } }`, {}, (d) => d.connectionUsage);
    const sse = subscribeSse(t.url, t.adminKey, `subscription { connectionUsage(tenantSlug: "busy") { ${fields} } }`, {}, (d) => d.connectionUsage);
    const every = subscribeWs(client, `subscription { connectionUsage { tenantSlug ${fields} } }`, {}, (d) => d.connectionUsage);
    const batch = subscribeWs(client, `subscription { connectionUsageBatch { usage { tenantSlug ${fields} } } }`, {}, (d) => d.connectionUsageBatch);
    try {
      await open('busy');
      for (const sub of [one, sse]) await until(() => sub.values.at(-1)?.current, (c) => c === 1, 'the stream to see the session');
      await until(() => every.values.find((v: any) => v.tenantSlug === 'busy'), Boolean, 'busy in the every-tenant stream');
      const fromBatch = await until(() => batch.values.flatMap((b: any) => b.usage).find((u: any) => u.tenantSlug === 'busy'), Boolean, 'busy in a batch');
      const streamed = [one.values.at(-1), sse.values.at(-1), every.values.find((v: any) => v.tenantSlug === 'busy'), fromBatch].map(apolloCacheKey);
      assert.deepEqual(streamed, [queried, queried, queried, queried], 'the stream merges into the queried object');

      const node = await t.gql(`query($id: ID!) { node(id: $id) { __typename id ... on ConnectionUsage { tenantSlug current } } }`, { id: query.data.busy.usage.id });
      assert.deepEqual(node.data.node, { __typename: 'ConnectionUsage', id: query.data.busy.usage.id, tenantSlug: 'busy', current: 1 });
      // Another tenant's key cannot read it: null, as for a tenant that does not exist.
      const theirs = await t.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: query.data.busy.usage.id }, await keyFor('quiet'));
      assert.equal(theirs.data.node, null);
      for (const sub of [one, sse, every, batch]) assert.deepEqual(sub.errors, []);
    } finally {
      for (const sub of [one, sse, every, batch]) sub.stop();
      await client.dispose();
    }
  });
});

describe('connectionUsageBatch(tenantSlugs)', () => {
  test('opens with a snapshot of every tenant asked for (idle and suspended ones too), then streams only those', async () => {
    const client = wsClient(t.url, t.adminKey);
    const BATCH = `subscription($slugs: [String!]) { connectionUsageBatch(tenantSlugs: $slugs) { snapshot usage { tenantSlug current } removedTenantSlugs } }`;
    const watchAll = subscribeWs(client, BATCH, {}, (d) => d.connectionUsageBatch);
    let asked: Collected<any> | undefined;
    try {
      // "outside" has sessions but is not asked for; "quiet" is asked for and has none.
      const outside = await open('outside');
      await until(() => watchAll.values.some((b: any) => b.usage.some((u: any) => u.tenantSlug === 'outside' && u.current === 1)), Boolean, 'outside to have a session');
      asked = subscribeWs(client, BATCH, { slugs: ['quiet', 'paused', 'busy'] }, (d) => d.connectionUsageBatch);
      const first: any = await until(() => asked!.values[0], Boolean, 'the opening message');
      assert.equal(first.snapshot, true);
      assert.deepEqual(
        first.usage.map((u: any) => `${u.tenantSlug}=${u.current}`).sort(),
        ['busy=1', 'quiet=0'],
        'every ACTIVE tenant asked for, with or without sessions',
      );
      assert.deepEqual(first.removedTenantSlugs, ['paused'], 'a tenant asked for that is not ACTIVE');

      await outside.end();
      await until(() => watchAll.values.some((b: any) => b.usage.some((u: any) => u.tenantSlug === 'outside' && u.current === 0)), Boolean, 'outside to change');
      await open('quiet');
      await until(() => asked!.values.some((b: any) => b.usage.some((u: any) => u.tenantSlug === 'quiet' && u.current === 1)), Boolean, 'quiet\'s change in the stream asked for');
      assert.ok(asked.values.slice(1).every((b: any) => !b.snapshot), 'only the opening message is a snapshot');
      assert.deepEqual(asked.values.flatMap((b: any) => b.usage.map((u: any) => u.tenantSlug)).filter((s: string) => !['quiet', 'busy'].includes(s)), [], 'nothing of tenants not asked for');
      assert.equal(watchAll.values[0].snapshot, false, 'without tenantSlugs: no snapshot');
      assert.deepEqual([watchAll.errors, asked.errors], [[], []]);
    } finally {
      watchAll.stop();
      asked?.stop();
      await client.dispose();
    }
  });

  test('another tenant\'s slug is NOT_FOUND for a tenant key (its own is fine); more than GRAPHQL_MAX_PAGE_SIZE is INVALID_INPUT', async () => {
    const key = await keyFor('quiet');
    const client = wsClient(t.url, key);
    const BATCH = `subscription($slugs: [String!]) { connectionUsageBatch(tenantSlugs: $slugs) { snapshot usage { tenantSlug } } }`;
    const own = subscribeWs(client, BATCH, { slugs: ['quiet'] }, (d) => d.connectionUsageBatch);
    const theirs = subscribeWs(client, BATCH, { slugs: ['quiet', 'busy'] }, (d) => d.connectionUsageBatch);
    const unknown = subscribeSse(t.url, t.adminKey, BATCH, { slugs: ['nobody-here'] }, (d) => d.connectionUsageBatch);
    const many = subscribeSse(t.url, t.adminKey, BATCH, { slugs: ['a', 'b', 'c', 'd', 'e', 'f'] }, (d) => d.connectionUsageBatch);
    try {
      const opening = await until(() => own.values[0], Boolean, 'its own snapshot');
      assert.deepEqual(opening, { snapshot: true, usage: [{ tenantSlug: 'quiet' }] });
      const codes = (errors: unknown[]) => errors.map((e: any) => e?.extensions?.code);
      for (const [sub, code] of [[theirs, 'NOT_FOUND'], [unknown, 'NOT_FOUND'], [many, 'INVALID_INPUT']] as const) {
        await until(() => sub.errors.length, (n) => n > 0, `an error ${code}`);
        assert.deepEqual(codes(sub.errors), [code]);
        assert.deepEqual(sub.values, []);
      }
    } finally {
      for (const sub of [own, theirs, unknown, many]) sub.stop();
      await client.dispose();
    }
  });
});
