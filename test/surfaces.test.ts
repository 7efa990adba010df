// @test-slow: started first (scripts/run-tests.ts)
// @test-scope once: the GraphQL transports as real clients use them: the same on any server and with any privileges.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freePort } from './support/free-port.js';
import { until } from './support/subscriptions.js';
import { PROVISION, startTestTenantry, type GraphQLResponse, type TestTenantry } from './support/test-tenantry.js';

// yoga would put original errors (with stacks) in responses in development; Tenantry never does.
process.env.NODE_ENV = 'development';

let t: TestTenantry;
let tenantKey: string;
let explode = false;

before(async () => {
  t = await startTestTenantry({
    failpoints: {
      'auth.before': () => {
        if (explode) throw new Error('the control database is on fire');
      },
    },
  });
  const r = await t.gql(PROVISION, { input: { slug: 'surface', displayName: 'surface' } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  const k = await t.gql(`mutation { createApiKey(input: { name: "surface reader", role: TENANT_READER, tenantSlug: "surface" }) { key } }`);
  tenantKey = k.data.createApiKey.key;
});
after(() => t.cleanup());

const get = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers });
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('cluster-wide figures', () => {
  const CLUSTER = '{ tenant(slug: "surface") { cluster { name serverVersion maxConnections allocatedConnections tenantCount capacity extensions { name } } } }';

  test('a tenant key sees its cluster\'s name and version, and null for every server-wide figure', async () => {
    const r = await t.gql(CLUSTER, {}, tenantKey);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const c = r.data.tenant.cluster;
    assert.equal(c.name, 'default');
    assert.match(c.serverVersion, /^\d+/);
    assert.deepEqual({ ...c, name: undefined, serverVersion: undefined }, {
      name: undefined,
      serverVersion: undefined,
      maxConnections: null,
      allocatedConnections: null,
      tenantCount: null,
      capacity: null,
      extensions: null,
    });
  });

  test('an admin sees them all', async () => {
    const c = (await t.gql(CLUSTER)).data.tenant.cluster;
    assert.ok(c.maxConnections > 0 && c.capacity > 0 && c.tenantCount >= 1 && c.allocatedConnections >= 50);
    assert.ok(c.extensions.some((e: { name: string }) => e.name === 'pg_trgm'));
  });
});

describe('internal endpoints', () => {
  test('INTERNAL_PORT: /metrics and /health/ready move to the internal address, keyless there even in production; the public port no longer serves them', async () => {
    const port = await freePort();
    const s = await startTestTenantry({ env: { INTERNAL_PORT: String(port), INTERNAL_HOST: '127.0.0.1', NODE_ENV: 'production' } });
    try {
      const internal = `http://127.0.0.1:${port}`;
      assert.equal((await get(`${s.url}/metrics`)).status, 404);
      assert.equal((await get(`${s.url}/health/ready`)).status, 404);
      assert.equal((await get(`${s.url}/health/live`)).status, 200);
      const metrics = await get(`${internal}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /tenantry_process_/);
      const ready = await get(`${internal}/health/ready`);
      assert.ok([200, 503].includes(ready.status));
      assert.ok('checks' in ((await ready.json()) as object));
      assert.equal((await get(`${internal}/health/live`)).status, 200);
      assert.equal((await get(`${internal}/graphql`)).status, 404, 'no API on the internal address');
      assert.equal((await s.gql('{ viewer { role } }')).data.viewer.role, 'ADMIN');
    } finally {
      await s.cleanup();
    }
    // The internal address is closed with the service.
    await assert.rejects(get(`http://127.0.0.1:${port}/health/live`));
  });

  test('INTERNAL_ENDPOINTS_AUTH=admin: /metrics and /health/ready need an ADMIN key', async () => {
    const s = await startTestTenantry({ env: { INTERNAL_ENDPOINTS_AUTH: 'admin' } });
    try {
      await s.gql(PROVISION, { input: { slug: 'probe', displayName: 'probe' } });
      const reader = (await s.gql(`mutation { createApiKey(input: { name: "r", role: TENANT_READER, tenantSlug: "probe" }) { key } }`)).data.createApiKey.key;
      for (const path of ['/metrics', '/health/ready']) {
        const none = await get(`${s.url}${path}`);
        assert.equal(none.status, 401, path);
        assert.equal(((await none.json()) as { code: string }).code, 'UNAUTHENTICATED');
        assert.equal((await get(`${s.url}${path}`, bearer(`tnry_${'1'.repeat(64)}`))).status, 401);
        assert.equal((await get(`${s.url}${path}`, bearer(reader))).status, 403, path);
        assert.ok([200, 503].includes((await get(`${s.url}${path}`, bearer(s.adminKey))).status), path);
      }
      assert.equal((await get(`${s.url}/health/live`)).status, 200, 'liveness stays open');
    } finally {
      await s.cleanup();
    }
  });

  test('by default (development) they stay open on the public port', async () => {
    assert.equal((await get(`${t.url}/metrics`)).status, 200);
    assert.ok([200, 503].includes((await get(`${t.url}/health/ready`)).status));
  });
});

describe('production settings', () => {
  const TYPO = '{ tenantz { slug } }';
  const INTROSPECTION = '{ __schema { queryType { name } } }';
  const html = (url: string) => get(`${url}/graphql`, { accept: 'text/html' });

  test('NODE_ENV=production: no GraphiQL, no introspection, no field suggestions, CSRF prevention on, /metrics and /health/ready need an ADMIN key', async () => {
    const p = await startTestTenantry({ env: { NODE_ENV: 'production' } });
    try {
      // Without INTERNAL_PORT they share the public port, so they are not open to anyone there.
      for (const path of ['/metrics', '/health/ready']) {
        const open = await get(`${p.url}${path}`);
        assert.equal(open.status, 401, path);
        assert.equal(((await open.json()) as { code: string }).code, 'UNAUTHENTICATED');
        assert.ok([200, 503].includes((await get(`${p.url}${path}`, bearer(p.adminKey))).status), path);
      }
      assert.equal((await get(`${p.url}/health/live`)).status, 200, 'liveness stays open');
      const page = await html(p.url);
      assert.ok(!(page.headers.get('content-type') ?? '').includes('text/html'), 'GraphiQL is not served');
      const intro = await p.gql(INTROSPECTION);
      assert.equal(intro.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
      assert.match(intro.errors![0]!.message, /introspection has been disabled/);
      const typo = await p.gql(TYPO);
      assert.match(typo.errors![0]!.message, /Cannot query field "tenantz"/);
      assert.doesNotMatch(typo.errors![0]!.message, /Did you mean/);
      // A "simple" cross-site request (a GET, or a form post) is refused without the CSRF header.
      const simple = await get(`${p.url}/graphql?query=${encodeURIComponent('{ __typename }')}`);
      assert.equal(simple.status, 403);
      const refused = (await simple.json()) as GraphQLResponse;
      assert.equal(refused.errors?.[0]?.extensions?.code, 'CSRF_HEADER_REQUIRED', JSON.stringify(refused));
      assert.match(refused.errors![0]!.message, /x-graphql-yoga-csrf/);
      const form = await fetch(`${p.url}/graphql`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ query: '{ __typename }' }) });
      assert.equal(form.status, 403);
      assert.equal(((await form.json()) as GraphQLResponse).errors?.[0]?.extensions?.code, 'CSRF_HEADER_REQUIRED');
      const withHeader = await get(`${p.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, { 'x-graphql-yoga-csrf': '1' });
      assert.equal(withHeader.status, 200);
      assert.equal((await p.gql('{ viewer { role } }')).data.viewer.role, 'ADMIN', 'JSON posts work as before');
    } finally {
      await p.cleanup();
    }
  });

  test('production with GRAPHIQL=true and GRAPHQL_INTROSPECTION=true turns them back on', async () => {
    const p = await startTestTenantry({ env: { NODE_ENV: 'production', GRAPHIQL: 'true', GRAPHQL_INTROSPECTION: 'true' } });
    try {
      assert.match((await html(p.url)).headers.get('content-type') ?? '', /text\/html/);
      assert.equal((await p.gql(INTROSPECTION)).data.__schema.queryType.name, 'Query');
    } finally {
      await p.cleanup();
    }
  });

  test('development keeps GraphiQL, introspection, suggestions and plain GETs', async () => {
    assert.match((await html(t.url)).headers.get('content-type') ?? '', /text\/html/);
    assert.equal((await t.gql(INTROSPECTION)).data.__schema.queryType.name, 'Query');
    assert.match((await t.gql(TYPO)).errors![0]!.message, /Did you mean/);
    assert.equal((await get(`${t.url}/graphql?query=${encodeURIComponent('{ __typename }')}`)).status, 200);
  });
});

describe('no stack traces', () => {
  test('in development, a caller without a key gets no stack trace nor the original error', async () => {
    assert.equal(process.env.NODE_ENV, 'development');
    explode = true;
    try {
      for (const key of [null, `tnry_${'2'.repeat(64)}`, t.adminKey]) {
        const res = await fetch(`${t.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(key ? bearer(key) : {}) },
          body: JSON.stringify({ query: '{ viewer { role } }' }),
        });
        const text = await res.text();
        const body = JSON.parse(text) as GraphQLResponse;
        assert.ok(body.errors?.length, text);
        assert.doesNotMatch(text, /stack|on fire|originalError|\.ts:\d+|node_modules/, text);
        const { code, correlationId } = body.errors![0]!.extensions!;
        assert.equal(code, 'INTERNAL_SERVER_ERROR');
        assert.ok(t.logs.some((l) => l.includes(correlationId!) && l.includes('on fire')), 'logged under the correlation id the caller got');
      }
    } finally {
      explode = false;
    }
    for (const body of ['{"query": ', '{"query": "{ viewer { role ", "variables": 5}']) {
      const text = await (await fetch(`${t.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).text();
      assert.doesNotMatch(text, /"stack"|\.ts:\d+|node_modules/, text);
    }
  });
});

describe('errors a client can act on', () => {
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${t.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(t.adminKey), ...headers }, body: JSON.stringify(body) });

  test('node(id) with a malformed global ID is BAD_USER_INPUT', async () => {
    for (const id of ['xyz', '', 'not base64 at all!']) {
      const r = await t.gql('query($id: ID!) { node(id: $id) { id } }', { id });
      assert.equal(r.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', `${id}: ${JSON.stringify(r.errors)}`);
      assert.equal(r.data.node, null);
    }
  });

  test('a subscription asked for as application/json gets 406 with a JSON error saying what is served, and nothing stays subscribed', async () => {
    const subscribers = async () => Number(/^tenantry_usage_subscribers (\d+)/m.exec(await (await get(`${t.url}/metrics`)).text())?.[1]);
    const before = await subscribers();
    for (const accept of ['application/json', 'application/graphql-response+json']) {
      const res = await post({ query: 'subscription { connectionUsage(tenantSlug: "surface") { current } }' }, { accept });
      assert.equal(res.status, 406, accept);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const body = (await res.json()) as GraphQLResponse;
      assert.equal(body.errors?.[0]?.extensions?.code, 'NOT_ACCEPTABLE', JSON.stringify(body));
      assert.match(body.errors![0]!.message, /text\/event-stream.*graphql-ws/);
    }
    await until(subscribers, (n) => n === before, 'the refused subscriptions to end', 10_000);
  });

  test("PUT (graphql-sse's single-connection mode) gets 405 saying which transports are served", async () => {
    const res = await fetch(`${t.url}/graphql`, { method: 'PUT', headers: bearer(t.adminKey) });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, POST');
    const body = (await res.json()) as GraphQLResponse;
    assert.equal(body.errors?.[0]?.extensions?.code, 'METHOD_NOT_ALLOWED');
    assert.match(body.errors![0]!.message, /single-connection mode .* is not served/);
    assert.match(body.errors![0]!.message, /distinct-connections mode/);
  });
});
