// @test-scope once: the order in which a stopping service ends its work: the same on any server and with any privileges (what the mutations do on the server is tested per server elsewhere).
// Issue 14, items 1 and 10: stopping the service loses no work and ends no stream.
// Requests and mutations under way finish before anything they use is closed; what arrives
// meanwhile is answered 503 with Retry-After (kept-alive connections too); subscriptions are
// closed without `complete`, so real clients (graphql-ws, graphql-sse) resubscribe on their
// own to the restarted server.
import assert from 'node:assert/strict';
import { request as httpRequest, Agent, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import { createClient } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { withDatabase } from '../src/platform/db/connection-url.js';
import type { FailpointContext } from '../src/platform/failpoints.js';
import { freePort } from './support/free-port.js';
import { subscribeSse, subscribeWs, until, wsClient } from './support/subscriptions.js';
import { connectAs, PROVISION, startTestTenantry, testServerUrl, type TestTenantry } from './support/test-tenantry.js';

const USAGE = `subscription($slug: String) { connectionUsage(tenantSlug: $slug) { tenantSlug current } }`;
const pick = (d: any) => d.connectionUsage as { tenantSlug: string; current: number };

import * as graphqlSse from 'graphql-sse';

const started: TestTenantry[] = [];
after(async () => {
  for (const t of started.reverse()) await t.cleanup().catch(() => undefined);
});

/** Holds provisioning of `slug` before `step` until released. */
function holdAt(step: string, slug: string) {
  let reached!: () => void;
  let release!: () => void;
  const atStep = new Promise<void>((resolve) => (reached = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    failpoints: {
      [`provision.before:${step}`]: async ({ tenantSlug }: FailpointContext) => {
        if (tenantSlug !== slug) return;
        reached();
        await released;
      },
    },
    atStep,
    release,
  };
}

/** A POST on one kept-alive connection (node:http, so the test knows whether the socket was reused). */
function postOn(agent: Agent, url: string, key: string, query: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: any; reusedSocket: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text), reusedSocket: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ query }));
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The control database's tenants, by slug, with their status and failed step. */
async function tenantRows(t: TestTenantry): Promise<Record<string, { status: string; failed_step: string | null }>> {
  const control = new pg.Client({ connectionString: withDatabase(testServerUrl(), t.controlDatabase) });
  await control.connect();
  try {
    const { rows } = await control.query(`SELECT slug, status, failed_step FROM tenants`);
    return Object.fromEntries(rows.map((r) => [r.slug, { status: r.status, failed_step: r.failed_step }]));
  } finally {
    await control.end();
  }
}

describe('work under way when the service stops', () => {
  test('a provisionTenant under way finishes and returns working credentials; meanwhile a kept-alive connection gets 503 with Retry-After and a new graphql-ws connection is closed with 1001', async () => {
    const hold = holdAt('CREDENTIALS', 'in-flight');
    const t = await startTestTenantry({ failpoints: hold.failpoints });
    started.push(t);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const provisioning = t.gql(PROVISION, { input: { slug: 'in-flight', displayName: 'in flight', maxConnections: 3 } });
      await hold.atStep;
      // A connection the client keeps alive, opened before the stop.
      assert.equal((await postOn(agent, t.url, t.adminKey, '{ __typename }')).status, 200);

      const closing = t.stop();
      const late = await postOn(agent, t.url, t.adminKey, 'mutation { provisionTenant(input: { slug: "too-late", displayName: "too late" }) { tenant { slug } } }');
      assert.equal(late.reusedSocket, true, 'the request went on the kept-alive connection');
      assert.equal(late.status, 503);
      assert.equal(late.headers['retry-after'], '5');
      assert.equal(late.headers.connection, 'close');
      assert.equal(late.body.errors[0].extensions.code, 'SHUTTING_DOWN');
      // graphql-ws clients retry after a close code (an HTTP error answering the upgrade would be fatal to them).
      let closedWith = 0;
      const latecomer = wsClient(t.url, t.adminKey, (code) => (closedWith = code));
      const refused = subscribeWs(latecomer, USAGE, { slug: 'in-flight' }, pick);
      await until(() => closedWith, (c) => c !== 0, 'the new connection to close');
      assert.equal(closedWith, 1001);
      assert.deepEqual(refused.values, []);
      await latecomer.dispose();

      hold.release();
      const r = await provisioning;
      assert.equal(r.status, 200);
      assert.deepEqual(r.data.provisionTenant.userErrors, []);
      assert.equal(r.data.provisionTenant.tenant.status, 'ACTIVE');
      await closing;

      // Nothing FAILED or half made; the refused mutation did nothing.
      assert.deepEqual(await tenantRows(t), { 'in-flight': { status: 'ACTIVE', failed_step: null } });
      const tenant = await connectAs(r.data.provisionTenant.connectionString);
      assert.equal((await tenant.query('SELECT current_user AS u')).rows[0].u, r.data.provisionTenant.tenant.roleName);
      await tenant.end();
    } finally {
      hold.release();
      agent.destroy();
    }
  });

  test('over graphql-ws: a mutation under way finishes before its socket closes with 1001; one sent meanwhile on the same socket gets SHUTTING_DOWN', async () => {
    const hold = holdAt('CREDENTIALS', 'over-ws');
    const t = await startTestTenantry({ failpoints: hold.failpoints });
    started.push(t);
    let closedWith = 0;
    const client = wsClient(t.url, t.adminKey, (code) => (closedWith = code));
    const once = (query: string) =>
      new Promise<any>((resolve, reject) => {
        let result: unknown;
        // An operation refused before it ran comes as the sink's error: a list of GraphQL errors.
        client.subscribe({ query }, { next: (r) => (result = r), error: (err) => (Array.isArray(err) ? resolve({ errors: err }) : reject(err)), complete: () => resolve(result) });
      });
    // Holds the (lazy) client's socket open whatever the mutations do.
    const batches = subscribeWs(client, `subscription { connectionUsageBatch { sampledAt } }`, {}, (d) => d);
    try {
      const provisioning = once('mutation { provisionTenant(input: { slug: "over-ws", displayName: "over ws", maxConnections: 3 }) { tenant { status } connectionString userErrors { code } } }');
      await hold.atStep;
      const closing = t.stop();
      const late = await once('mutation { provisionTenant(input: { slug: "ws-too-late", displayName: "too late" }) { tenant { slug } } }');
      assert.deepEqual(late.errors?.map((e: any) => e.extensions?.code), ['SHUTTING_DOWN']);
      assert.equal(closedWith, 0, 'the socket stays open while its mutation runs');

      hold.release();
      const r = await provisioning;
      assert.deepEqual(r.data.provisionTenant.userErrors, []);
      assert.equal(r.data.provisionTenant.tenant.status, 'ACTIVE');
      assert.ok(r.data.provisionTenant.connectionString);
      await closing;
      await until(() => closedWith, (c) => c !== 0, 'the socket to close');
      assert.equal(closedWith, 1001);
      assert.deepEqual(batches.errors.map((e: any) => e?.code), [1001], 'the subscription was not completed: the close is its end');
      assert.deepEqual(await tenantRows(t), { 'over-ws': { status: 'ACTIVE', failed_step: null } });
    } finally {
      hold.release();
      await client.dispose();
    }
  });

  test('the wait is bounded by SHUTDOWN_GRACE_MS: a request that does not finish in time does not hold the stop', async () => {
    const hold = holdAt('DATABASE', 'stuck');
    const t = await startTestTenantry({ failpoints: hold.failpoints, env: { SHUTDOWN_GRACE_MS: '300' } });
    started.push(t);
    try {
      const provisioning = t.gql(PROVISION, { input: { slug: 'stuck', displayName: 'stuck', maxConnections: 3 } }).catch((err: Error) => err);
      await hold.atStep;
      const closing = t.stop();
      await until(() => t.logs.some((l) => /stopping with requests still under way/.test(l) && /"unfinished":1/.test(l)), Boolean, 'the stop to say what it leaves running');
      // Still held, and the stop has moved on: the port no longer takes connections.
      await until(() => listening(Number(new URL(t.url).port)), (up) => !up, 'the port to close');
      hold.release();
      await closing;
      await provisioning;
    } finally {
      hold.release();
    }
  });
});

describe('subscriptions when the service stops', () => {
  test('graphql-ws: the socket closes with 1001 and no `complete`; SSE: the stream ends without `complete` (a deprovisioned tenant\'s stream still completes)', async () => {
    const t = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200' } });
    started.push(t);
    let closedWith = 0;
    const client = wsClient(t.url, t.adminKey, (code) => (closedWith = code));
    try {
      for (const slug of ['bye', 'gone']) assert.deepEqual((await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 3 } })).data.provisionTenant.userErrors, []);
      const ws = subscribeWs(client, USAGE, { slug: 'bye' }, pick);
      const sse = subscribeSse(t.url, t.adminKey, USAGE, { slug: 'bye' }, pick);
      const gone = subscribeSse(t.url, t.adminKey, USAGE, { slug: 'gone' }, pick);
      for (const sub of [ws, sse, gone]) await until(() => sub.values.length, (n) => n > 0, 'a first value');

      // The stream truly ends: it completes.
      assert.deepEqual((await t.gql(`mutation { deprovisionTenant(input: { slug: "gone", confirm: "gone" }) { userErrors { code } } }`)).data.deprovisionTenant.userErrors, []);
      await until(() => gone.done, Boolean, 'the deprovisioned tenant\'s stream to end');
      assert.equal(gone.completed, true);

      // The server goes away: nothing completes.
      await t.stop();
      await until(() => closedWith, (c) => c !== 0, 'the socket to close');
      assert.equal(closedWith, 1001);
      // retryAttempts 0: the client reports the close as its error instead of retrying.
      assert.deepEqual(ws.errors.map((e: any) => e?.code), [1001], 'the operation was not completed');
      await until(() => sse.done, Boolean, 'the SSE stream to end');
      assert.notEqual(sse.completed, true, 'no `complete` event on the SSE stream');
      assert.deepEqual(sse.errors, [], 'the response ended cleanly');
    } finally {
      await client.dispose();
    }
  });

  test('a real graphql-ws client with retries resubscribes by itself after a restart and gets values again, never a completion', async () => {
    const port = String(await freePort());
    const first = await startTestTenantry({ env: { PORT: port, USAGE_SAMPLE_MS: '200' } });
    started.push(first);
    const closes: number[] = [];
    const client = createClient({
      url: `${first.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${first.adminKey}` },
      // A minute of attempts 250 ms apart (a restart on a busy machine takes a while); the decision to retry is the client's own.
      retryAttempts: 240,
      retryWait: () => new Promise((resolve) => setTimeout(resolve, 250)),
      // By default graphql-ws retries only after a close code, not after a connection error
      // (the port closed while the server restarts): a client meant to ride through restarts
      // retries those too, and gives up only on a refused key.
      shouldRetry: (event) => (event as { code?: number }).code !== 4403,
      on: { closed: (event) => closes.push((event as { code: number }).code) },
    });
    let second: TestTenantry | undefined;
    let session: pg.Client | undefined;
    try {
      const r = await first.gql(PROVISION, { input: { slug: 'resumed', displayName: 'resumed', maxConnections: 3 } });
      assert.deepEqual(r.data.provisionTenant.userErrors, []);
      const sub = subscribeWs(client, USAGE, { slug: 'resumed' }, pick);
      await until(() => sub.values.length, (n) => n > 0, 'a first value');

      await first.stop();
      await until(() => closes.length, (n) => n > 0, 'the socket to close');
      assert.equal(closes[0], 1001);
      const heard = sub.values.length;

      second = await startTestTenantry({ shareWith: first, env: { PORT: port, USAGE_SAMPLE_MS: '200' } });
      await until(() => ({ values: sub.values.length, errors: sub.errors.map(String) }), (s) => s.values > heard || s.errors.length > 0, 'a value from the restarted server', 60_000);
      assert.deepEqual(sub.errors, []);
      session = await connectAs(r.data.provisionTenant.connectionString);
      await until(() => sub.values.at(-1)?.current, (c) => c === 1, 'the restarted server\'s samples');
      assert.equal(sub.done, false, 'the subscription never completed');
      assert.deepEqual(sub.errors, []);
      sub.stop();
    } finally {
      await session?.end();
      await client.dispose();
      await second?.stop();
    }
  });

  test('a real graphql-sse client with retries resubscribes by itself after a restart and gets values again', async () => {
    const port = String(await freePort());
    const first = await startTestTenantry({ env: { PORT: port, USAGE_SAMPLE_MS: '200' } });
    started.push(first);
    const client = graphqlSse.createClient({
      url: `${first.url}/graphql`,
      headers: { authorization: `Bearer ${first.adminKey}` },
      retryAttempts: 240,
      retry: () => new Promise((resolve) => setTimeout(resolve, 250)),
    });
    const sub = { values: [] as number[], errors: [] as unknown[], completed: false };
    let second: TestTenantry | undefined;
    try {
      const r = await first.gql(PROVISION, { input: { slug: 'resumed-sse', displayName: 'resumed', maxConnections: 3 } });
      assert.deepEqual(r.data.provisionTenant.userErrors, []);
      const stop = client.subscribe(
        { query: USAGE, variables: { slug: 'resumed-sse' } },
        {
          next: (result: any) => (result.errors ? sub.errors.push(...result.errors) : sub.values.push(result.data.connectionUsage.current)),
          error: (err: unknown) => sub.errors.push(err),
          complete: () => (sub.completed = true),
        },
      );
      await until(() => sub.values.length, (n) => n > 0, 'a first value');
      await first.stop();
      const heard = sub.values.length;
      second = await startTestTenantry({ shareWith: first, env: { PORT: port, USAGE_SAMPLE_MS: '200' } });
      await until(() => ({ values: sub.values.length, errors: sub.errors.map(String) }), (s) => s.values > heard || s.errors.length > 0, 'a value from the restarted server', 60_000);
      assert.equal(sub.completed, false, 'the subscription never completed');
      assert.deepEqual(sub.errors, []);
      stop();
    } finally {
      client.dispose();
      await second?.stop();
    }
  });
});
