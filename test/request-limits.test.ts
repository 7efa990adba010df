// @test-scope once: GraphQL's limits and the live-read budget, kept in Tenantry: the same on any server and with any privileges.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { connectAs, fewestStatements, PROVISION, startTestTenantry, type GraphQLResponse, type TestTenantry, settle } from './support/test-tenantry.js';
import { until } from './support/subscriptions.js';

let t: TestTenantry;
const slugs = ['live', 'limit-b', 'limit-c', 'limit-d', 'limit-e'];
let liveConnectionString: string;
let liveDatabase: string;

// Live reads wait here while the test looks at pg_stat_activity.
let gate: Promise<void> | null = null;
let entered = 0;
/** The database of each live extensions read, in the order they started. */
const startedReads: string[] = [];

before(async () => {
  t = await startTestTenantry({
    env: { LIVE_READ_CONCURRENCY: '2', LIVE_READ_QUEUE: '50' },
    failpoints: {
      'live-read': async ({ database }) => {
        entered++;
        startedReads.push(database ?? '');
        await gate;
      },
    },
  });
  for (const slug of slugs) {
    const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 10 } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
    if (slug === 'live') {
      liveConnectionString = r.data.provisionTenant.connectionString;
      liveDatabase = r.data.provisionTenant.tenant.databaseName;
    }
  }
  // Some quota history and audit trail to page through.
  for (const max of [11, 12, 13]) {
    const r = await t.gql(`mutation($m: Int!) { updateTenantQuota(input: { slug: "limit-b", maxConnections: $m, reason: "step" }) { userErrors { code } } }`, { m: max });
    assert.deepEqual(r.data.updateTenantQuota.userErrors, []);
  }
});
after(() => t.cleanup());

const code = (r: GraphQLResponse) => r.errors?.[0]?.extensions?.code;
const limitOf = (r: GraphQLResponse) => (r.errors?.[0]?.extensions as { limit?: string } | undefined)?.limit;

/** Everything that reads a cluster or a tenant database on a request's behalf. */
async function liveReadCounters() {
  const cluster = await t.app.parts.clusters.get((await t.app.parts.clusters.ensureDefault()).id);
  return {
    budget: t.app.parts.liveReads.stats.started,
    activity: cluster.stats.activityReads,
    usage: t.app.parts.usage.stats.liveReads,
  };
}

function nested(levels: number): string {
  // tenant → usage → tenant → usage …: one level per field, ending on a scalar.
  let inner = levels % 2 === 1 ? 'current' : 'slug';
  for (let i = levels - 1; i > 1; i--) inner = i % 2 === 0 ? `usage { ${inner} }` : `tenant { ${inner} }`;
  return `{ tenant(slug: "live") { ${inner} } }`;
}

describe('queries over the limits are refused before they run', () => {
  test('a 9-level nested query is refused, naming GRAPHQL_MAX_DEPTH; 8 levels run', async () => {
    const before = await liveReadCounters();
    const deep = await t.gql(nested(9));
    assert.equal(code(deep), 'QUERY_TOO_COMPLEX', JSON.stringify(deep.errors));
    assert.equal(limitOf(deep), 'GRAPHQL_MAX_DEPTH');
    assert.match(deep.errors![0]!.message, /depth \(9\) exceeds the limit of 8 \(GRAPHQL_MAX_DEPTH\)/);
    assert.ok(deep.data == null || deep.data.tenant === undefined, 'nothing was resolved');
    assert.deepEqual(await liveReadCounters(), before, 'no live read happened');

    const ok = await t.gql(nested(8));
    assert.equal(ok.errors, undefined, JSON.stringify(ok.errors));
    assert.equal(ok.data.tenant.usage.tenant.usage.tenant.usage.tenant.slug, 'live');
  });

  test('1,000 aliases of a live field are refused, and nothing is read', async () => {
    const before = await liveReadCounters();
    const aliases = Array.from({ length: 1000 }, (_, i) => `a${i}: extensions(live: true) { name }`).join(' ');
    const r = await t.gql(`{ tenant(slug: "live") { ${aliases} } }`);
    assert.equal(code(r), 'QUERY_TOO_COMPLEX', JSON.stringify(r.errors).slice(0, 300));
    assert.ok(['GRAPHQL_MAX_TOKENS', 'GRAPHQL_MAX_ALIASES'].includes(limitOf(r)!), limitOf(r));
    assert.equal(r.errors!.length, 1);
    const connections = Array.from({ length: 1000 }, (_, i) => `c${i}:connections{pid}`).join(' ');
    const c = await t.gql(`{ tenant(slug: "live") { ${connections} } }`);
    assert.equal(code(c), 'QUERY_TOO_COMPLEX');
    assert.deepEqual(await liveReadCounters(), before, 'no live read happened');
  });

  test('aliases past GRAPHQL_MAX_ALIASES are refused, naming it', async () => {
    const aliases = Array.from({ length: 31 }, (_, i) => `c${i}: connections { pid }`).join(' ');
    const before = await liveReadCounters();
    const r = await t.gql(`{ tenant(slug: "live") { ${aliases} } }`);
    assert.equal(code(r), 'QUERY_TOO_COMPLEX');
    assert.equal(limitOf(r), 'GRAPHQL_MAX_ALIASES');
    assert.match(r.errors![0]!.message, /aliases \(31\) exceeds the limit of 30/);
    assert.deepEqual(await liveReadCounters(), before);
  });

  test('live fields cost GRAPHQL_LIVE_FIELD_COST: a page of 100 live reads is over GRAPHQL_MAX_COST, recorded values are not', async () => {
    const before = await liveReadCounters();
    const live = await t.gql('{ tenants(first: 100) { edges { node { slug connections { pid } } } } }');
    assert.equal(code(live), 'QUERY_TOO_COMPLEX', JSON.stringify(live.errors));
    assert.equal(limitOf(live), 'GRAPHQL_MAX_COST');
    const liveExtensions = await t.gql('{ tenants(first: 100) { edges { node { extensions(live: true) { name } } } } }');
    assert.equal(limitOf(liveExtensions), 'GRAPHQL_MAX_COST');
    assert.deepEqual(await liveReadCounters(), before);
    const recorded = await t.gql('{ tenants(first: 100) { edges { node { slug extensions { name status } } } } }');
    assert.equal(recorded.errors, undefined, JSON.stringify(recorded.errors));
    assert.equal(recorded.data.tenants.edges.length, slugs.length);
  });

  test('more fields than GRAPHQL_MAX_BREADTH are refused', async () => {
    const r = await t.gql(`{ viewer { ${'role '.repeat(301)} } }`);
    assert.equal(limitOf(r), 'GRAPHQL_MAX_BREADTH');
  });

  test('a subscription over the limits is refused too (SSE)', async () => {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${t.adminKey}` },
      body: JSON.stringify({ query: 'subscription { connectionUsage(tenantSlug: "live") { tenant { usage { tenant { usage { tenant { usage { tenant { usage { current } } } } } } } } } }' }),
    });
    const text = await res.text();
    assert.match(text, /QUERY_TOO_COMPLEX/);
    assert.match(text, /GRAPHQL_MAX_DEPTH/);
  });
});

describe('request size', () => {
  const MAX = 1024 * 1024; // MAX_REQUEST_BYTES' default
  const payload = (bytes: number) => JSON.stringify({ query: '{ viewer { role } }', variables: { padding: 'x'.repeat(bytes) } });
  const post = (body: BodyInit, headers: Record<string, string> = {}) =>
    fetch(`${t.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.adminKey}`, ...headers }, body, duplex: 'half' } as RequestInit);

  test('a body over MAX_REQUEST_BYTES gets 413 REQUEST_ENTITY_TOO_LARGE, with or without Content-Length; one under it runs', async () => {
    const ok = await post(payload(MAX - 1000));
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as GraphQLResponse).data.viewer.role, 'ADMIN');

    const big = await post(payload(2 * MAX));
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as GraphQLResponse).errors?.[0]?.extensions?.code, 'REQUEST_ENTITY_TOO_LARGE');
    // The rest of the body is still on that connection: it is closed, not reused.
    assert.equal(big.headers.get('connection'), 'close');

    // Chunked: no Content-Length to judge by, so it is counted while it is read.
    const bytes = new TextEncoder().encode(payload(2 * MAX));
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.subarray(i, i + 64 * 1024));
        controller.close();
      },
    });
    const streamed = await post(chunked);
    assert.equal(streamed.status, 413);
    assert.equal(((await streamed.json()) as GraphQLResponse).errors?.[0]?.extensions?.code, 'REQUEST_ENTITY_TOO_LARGE');
    assert.equal(streamed.headers.get('connection'), 'close');
    // No half-read connection is handed to the next requests.
    for (let i = 0; i < 3; i++) assert.equal((await t.gql('{ viewer { role } }')).data.viewer.role, 'ADMIN');
  });

  test('a graphql-ws message over MAX_REQUEST_BYTES closes the socket with 1009; a normal one is answered', async () => {
    const open = (init: object) =>
      new Promise<{ acked: boolean; code: number }>((resolve) => {
        const socket = new WebSocket(`${t.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
        socket.on('open', () => socket.send(JSON.stringify(init)));
        socket.on('message', (data) => {
          if (JSON.parse(String(data)).type === 'connection_ack') {
            socket.close(1000);
            resolve({ acked: true, code: 1000 });
          }
        });
        socket.on('close', (code) => resolve({ acked: false, code }));
      });
    const auth = { authorization: `Bearer ${t.adminKey}` };
    assert.deepEqual(await open({ type: 'connection_init', payload: auth }), { acked: true, code: 1000 });
    assert.deepEqual(await open({ type: 'connection_init', payload: { ...auth, padding: 'x'.repeat(2 * MAX) } }), { acked: false, code: 1009 });
  });
});

describe('page sizes', () => {
  test('tenants(first: 500) is refused with the maximum named, not cut to 100', async () => {
    const r = await t.gql('{ tenants(first: 500) { edges { node { slug } } } }');
    assert.equal(code(r), 'BAD_USER_INPUT');
    assert.match(r.errors![0]!.message, /first must be between 0 and 100 \(GRAPHQL_MAX_PAGE_SIZE\), not 500/);
    const ok = await t.gql('{ tenants(first: 100) { edges { node { slug } } } }');
    assert.equal(ok.data.tenants.edges.length, slugs.length);
    for (const q of [
      '{ auditEvents(last: 101) { edges { node { action } } } }',
      '{ operations(first: 101) { edges { node { id } } } }',
      '{ tenant(slug: "live") { auditEvents(first: 101) { edges { node { action } } } } }',
      '{ tenant(slug: "live") { quota { history(first: 101) { changedAt } } } }',
      '{ tenant(slug: "live") { quota { history(first: -1) { changedAt } } } }',
    ]) {
      const refused = await t.gql(q);
      assert.equal(code(refused), 'BAD_USER_INPUT', `${q}: ${JSON.stringify(refused.errors ?? refused.data)}`);
      assert.match(refused.errors![0]!.message, /GRAPHQL_MAX_PAGE_SIZE/);
    }
  });
});

describe('list fields are batched: a page costs the same whatever its size', () => {
  const PAGE = `query($first: Int) { tenants(first: $first) { edges { node {
    slug
    quota { maxConnections history(first: 2) { newMaxConnections reason } }
    auditEvents(first: 3) { edges { node { action } } }
    schemaVersions { version }
    usageHistory(range: HOUR) { minuteStartAt }
    inventory { checkedAt }
    pool { status }
    extensions { name status }
  } } } }`;

  async function page(first: number) {
    const r = await t.gql(PAGE, { first });
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    assert.equal(r.data.tenants.edges.length, first);
    return r.data;
  }

  async function cost(first: number) {
    const { statements, result } = await fewestStatements(t, () => page(first));
    return { queries: statements, data: result };
  }

  test('quota history, audit events, schema versions, usage history: one query each per page', async () => {
    await page(1); // the key is cached from here on
    await settle(t); // and the inventory has looked at the new tenants
    const two = await cost(2);
    const five = await cost(5);
    assert.equal(five.queries, two.queries, `a page of 5 took ${five.queries} statements, a page of 2 took ${two.queries}`);
    assert.ok(five.queries <= 12, `${five.queries} statements for one page`);
    const b = five.data.tenants.edges.find((e: any) => e.node.slug === 'limit-b').node;
    assert.deepEqual(b.quota.history, [
      { newMaxConnections: 13, reason: 'step' },
      { newMaxConnections: 12, reason: 'step' },
    ]);
    assert.equal(b.auditEvents.edges.length, 3);
    assert.equal(b.auditEvents.edges[0].node.action, 'quota.updated');
    const e = five.data.tenants.edges.find((x: any) => x.node.slug === 'limit-e').node;
    assert.deepEqual(e.quota.history, [{ newMaxConnections: 10, reason: 'provisioned' }]);
    assert.equal(e.auditEvents.edges[0].node.action, 'tenant.provisioned');
  });

  test('a tenant page pages its audit trail with cursors', async () => {
    const first = await t.gql('{ tenant(slug: "limit-b") { auditEvents(first: 2) { edges { node { action } } pageInfo { hasNextPage endCursor } } } }');
    const page = first.data.tenant.auditEvents;
    assert.equal(page.edges.length, 2);
    assert.equal(page.pageInfo.hasNextPage, true);
    const next = await t.gql('query($a: String) { tenant(slug: "limit-b") { auditEvents(first: 50, after: $a) { edges { node { action } } } } }', { a: page.pageInfo.endCursor });
    const all = await t.gql('{ tenant(slug: "limit-b") { auditEvents(first: 50) { edges { node { action } } } } }');
    assert.deepEqual([...page.edges, ...next.data.tenant.auditEvents.edges], all.data.tenant.auditEvents.edges);
  });

  test('connections: one pg_stat_activity read for a page, whatever its size', async () => {
    const cluster = t.app.parts.clusters.defaultCluster;
    const reads = async (first: number) => {
      const before = cluster.stats.activityReads;
      const r = await t.gql('query($first: Int) { tenants(first: $first) { edges { node { slug connections { pid applicationName } } } } }', { first });
      assert.equal(r.errors, undefined, JSON.stringify(r.errors));
      return cluster.stats.activityReads - before;
    };
    const client = await connectAs(liveConnectionString);
    try {
      assert.equal(await reads(2), 1);
      assert.equal(await reads(5), 1);
      const own = await t.gql('{ tenant(slug: "live") { connections { pid } } }');
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      assert.ok(own.data.tenant.connections.some((c: { pid: number }) => c.pid === pid));
    } finally {
      await client.end();
    }
  });

  test('what a cluster offers is read once, then served from the cache', async () => {
    const q = '{ tenants(first: 5) { edges { node { extensions { name availableVersion } } } } clusters { extensions { name } } }';
    await t.gql(q);
    const before = t.app.parts.offeredExtensions.stats.reads;
    for (let i = 0; i < 3; i++) {
      const r = await t.gql(q);
      assert.equal(r.errors, undefined);
      assert.ok(r.data.tenants.edges[0].node.extensions.some((e: any) => e.name === 'pg_trgm' && e.availableVersion));
    }
    assert.equal(t.app.parts.offeredExtensions.stats.reads, before, 'pg_available_extensions was read again');
  });
});

describe('bad argument values in queries', () => {
  test('a NUL character is a clear BAD_USER_INPUT, never a 500', async () => {
    for (const [query, variables] of [
      ['{ tenant(slug: "li\\u0000ve") { slug } }', {}],
      ['query($s: String!) { tenant(slug: $s) { slug } }', { s: 'li\u0000ve' }],
      ['query($f: TenantFilter) { tenants(first: 5, filter: $f) { edges { node { slug } } } }', { f: { search: 'a\u0000' } }],
      ['{ auditEvents(first: 5, after: "\\u0000") { edges { node { action } } } }', {}],
    ] as const) {
      const r = await t.gql(query, variables);
      assert.notEqual(r.status, 500);
      assert.equal(code(r), 'BAD_USER_INPUT', `${query}: ${JSON.stringify(r.errors)}`);
      assert.match(r.errors![0]!.message, /must not contain NUL/);
    }
  });

  test('a search over 100 characters is refused', async () => {
    const r = await t.gql('query($f: TenantFilter) { tenants(first: 5, filter: $f) { edges { node { slug } } } }', { f: { search: 'x'.repeat(101) } });
    assert.equal(code(r), 'BAD_USER_INPUT');
    assert.match(r.errors![0]!.message, /filter\.search must be at most 100 characters/);
  });
});

test('100 concurrent live reads keep Tenantry within its budget, and the tenant can still connect', async () => {
  let release!: () => void;
  gate = new Promise<void>((resolve) => (release = resolve));
  entered = 0;
  const started = t.app.parts.liveReads.stats.started;
  const inTenantDb = async () =>
    Number(
      (
        await t.admin.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND application_name = 'tenantry-admin'`,
          [liveDatabase],
        )
      ).rows[0]!.n,
    );
  const q = '{ tenant(slug: "live") { extensions(live: true) { name installedVersion status } } }';
  const answers = Array.from({ length: 100 }, () => t.gql(q));
  try {
    // Both slots taken, and the 48 beyond the queue already answered.
    await until(() => entered, (n) => n === 2, 'two live reads holding their slots');
    const settled: GraphQLResponse[] = [];
    for (const a of answers) void a.then((r) => settled.push(r));
    await until(() => settled.length, (n) => n === 48, 'the reads past the queue to be refused');
    let most = 0;
    for (let i = 0; i < 5; i++) most = Math.max(most, await inTenantDb());
    assert.equal(most, 2, 'Tenantry holds exactly its budget of connections into the tenant database');
    for (const r of settled) {
      assert.equal(code(r), 'SERVER_BUSY', JSON.stringify(r.errors));
      assert.equal((r.errors![0]!.extensions as { retryable?: boolean }).retryable, true);
      assert.match(r.errors![0]!.message, /LIVE_READ_CONCURRENCY/);
    }
    // The tenant still gets in: its quota is 10 and Tenantry took only 2 of the database's slots.
    const client = await connectAs(liveConnectionString);
    assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
    await client.end();
  } finally {
    release();
    gate = null;
  }
  const all = await Promise.all(answers);
  const ok = all.filter((r) => r.errors === undefined);
  assert.equal(ok.length, 52);
  assert.ok(ok.every((r) => r.data.tenant.extensions.some((e: any) => e.name === 'pg_trgm' && e.status === 'OK')));
  assert.equal(t.app.parts.liveReads.stats.started - started, 52);
  assert.ok((await inTenantDb()) <= 2);
});

test('one tenant flooding live reads never refuses or starves another\'s: a queue each, and free slots go round', async () => {
  const readerKey = async (slug: string) =>
    (await t.gql(`mutation($slug: String!) { createApiKey(input: { name: "reader", role: TENANT_READER, tenantSlug: $slug }) { key } }`, { slug })).data.createApiKey.key as string;
  const floodKey = await readerKey('live');
  const otherKey = await readerKey('limit-b');
  const otherDatabase = (await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'limit-b' } })).databaseName;
  const read = (slug: string) => `{ tenant(slug: "${slug}") { extensions(live: true) { name status } } }`;
  const { stats } = t.app.parts.liveReads;
  const queuedBefore = stats.queued;
  let release!: () => void;
  gate = new Promise<void>((resolve) => (release = resolve));
  entered = 0;
  startedReads.length = 0;

  const flood = Array.from({ length: 100 }, () => t.gql(read('live'), {}, floodKey));
  const theirs: Promise<GraphQLResponse>[] = [];
  const theirsAnswered: GraphQLResponse[] = [];
  try {
    await until(() => entered, (n) => n === 2, 'two of the flood holding both slots');
    const floodRefused: GraphQLResponse[] = [];
    for (const a of flood) void a.then((r) => r.errors && floodRefused.push(r));
    await until(() => floodRefused.length, (n) => n === 48, 'the flood past its own queue (LIVE_READ_QUEUE 50) to be refused');
    for (let i = 0; i < 10; i++) theirs.push(t.gql(read('limit-b'), {}, otherKey).then((r) => (theirsAnswered.push(r), r)));
    await until(
      () => ({ queued: stats.queued - queuedBefore, answered: theirsAnswered.length }),
      (v) => v.queued === 60 || v.answered > 0,
      'the other tenant\'s reads to wait in a queue of their own (or be answered)',
    );
    assert.deepEqual(theirsAnswered.map((r) => code(r)), [], 'none of the other tenant\'s reads was refused while the flood waited');
  } finally {
    release();
    gate = null;
  }
  for (const r of await Promise.all(theirs)) {
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    assert.deepEqual(r.data.tenant.extensions, [{ name: 'pg_trgm', status: 'OK' }]);
  }
  // Turns alternate between the two tenants: all ten of the other's reads started before most of the flood's
  // queue did (first come, first served would have run the flood's 50 first).
  const lastOther = startedReads.lastIndexOf(otherDatabase);
  assert.ok(lastOther >= 0 && lastOther < 2 + 2 * 10 + 4, `the other tenant's last read started ${lastOther + 1}th of ${startedReads.length}`);
  assert.equal((await Promise.all(flood)).filter((r) => r.errors === undefined).length, 52);
});
