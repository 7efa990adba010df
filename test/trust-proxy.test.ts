// @test-scope once: the client's address behind a proxy, read from HTTP headers: nothing of it depends on the server or the control plane's privileges.
// Issue 14: with TRUST_PROXY=true the address was the first X-Forwarded-For entry, which the
// client writes: rotating it gave unlimited key guesses, and writing someone else's address
// there locked them out. The address is the one the trusted proxy appended (the right-most).
// Here the test is the proxy: it appends the "client's" address last, after whatever the client sent.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startTestTenantry, type GraphQLResponse, type TestTenantry } from './support/test-tenantry.js';

let t: TestTenantry;
const LIMIT = 3;

before(async () => {
  t = await startTestTenantry({ env: { TRUST_PROXY: 'true', AUTH_FAILURE_LIMIT: String(LIMIT), AUTH_FAILURE_WINDOW_MS: '600000', INTERNAL_ENDPOINTS_AUTH: 'admin' } });
});
after(() => t.cleanup());

const badKey = (i: number) => `tnry_${String(i % 10).repeat(64)}`;

function viaProxy(forwardedFor: string, key: string) {
  return fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor, authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: '{ viewer { role } }' }),
  });
}

async function failuresFrom(address: string): Promise<number> {
  const r = await t.gql(`{ auditEvents(first: 100, filter: { action: "auth.failed" }) { edges { node { metadata } } } }`);
  return r.data.auditEvents.edges.filter((e: any) => e.node.metadata.sourceAddress === address).length;
}

test('rotating the left of X-Forwarded-For buys no extra guesses: past the limit the address the proxy saw gets 429, on every transport', async () => {
  const client = '203.0.113.7';
  const statuses: number[] = [];
  for (let i = 0; i < LIMIT + 3; i++) {
    const res = await viaProxy(`198.18.0.${i}, ${client}`, badKey(i));
    statuses.push(res.status);
    const body = (await res.json()) as GraphQLResponse;
    assert.equal(body.errors?.[0]?.extensions?.code, res.status === 429 ? 'RATE_LIMITED' : 'UNAUTHENTICATED');
  }
  assert.deepEqual(statuses, [...Array(LIMIT).fill(200), 429, 429, 429], 'each guess counted against the client, not the address it wrote');
  assert.equal(await failuresFrom(client), LIMIT, 'audited under the address the proxy appended');
  assert.equal(await failuresFrom('198.18.0.0'), 0);

  // Even with a good key, from a new made-up address on the left.
  assert.equal((await viaProxy(`198.18.1.1, ${client}`, t.adminKey)).status, 429);

  // graphql-ws: the connection_init of the same client closes with 4429.
  class Proxied extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { 'x-forwarded-for': `198.18.2.2, ${client}` } });
    }
  }
  const closed = await new Promise<number>((resolve) => {
    const ws = createClient({
      url: `${t.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: Proxied,
      connectionParams: { authorization: `Bearer ${t.adminKey}` },
      retryAttempts: 0,
      on: { closed: (e) => resolve((e as { code: number }).code) },
    });
    ws.subscribe({ query: '{ viewer { role } }' }, { next: () => {}, error: () => {}, complete: () => {} });
  });
  assert.equal(closed, 4429);

  // The internal endpoints (INTERNAL_ENDPOINTS_AUTH=admin) read the address the same way.
  const metrics = await fetch(`${t.url}/metrics`, { headers: { 'x-forwarded-for': `198.18.3.3, ${client}`, authorization: `Bearer ${t.adminKey}` } });
  assert.equal(metrics.status, 429);
});

test("writing someone else's address on the left does not lock them out", async () => {
  const victim = '198.51.100.9';
  const attacker = '203.0.113.8';
  for (let i = 0; i < LIMIT + 2; i++) await (await viaProxy(`${victim}, ${attacker}`, badKey(i))).body?.cancel();
  assert.equal((await viaProxy(attacker, t.adminKey)).status, 429, 'the attacker is limited');

  const res = await viaProxy(victim, t.adminKey);
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as GraphQLResponse).data.viewer.role, 'ADMIN');
  assert.equal(await failuresFrom(victim), 0);
});
