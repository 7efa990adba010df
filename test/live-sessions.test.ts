// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { TenantUsageSample, UsageBatch } from '../src/modules/usage/usage-sample.js';
import { subscribeSse, subscribeWs, until, wsClient } from './support/subscriptions.js';
import { PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

// What ends a live subscription, on both transports: a key revoked or expired, a
// subscriber too slow to keep up. (The service stopping ends none: graceful-shutdown.test.ts.)

const USAGE = `subscription($slug: String) { connectionUsage(tenantSlug: $slug) { tenantSlug current } }`;
const pick = (d: any) => d.connectionUsage as { tenantSlug: string; current: number };
const codesOf = (errors: unknown[]) => errors.map((e: any) => e?.extensions?.code ?? e?.message);

let t: TestTenantry;

async function keyFor(tt: TestTenantry, slug: string, expiresAt?: Date): Promise<{ id: string; key: string }> {
  const r = await tt.gql(`mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id } userErrors { code message } } }`, {
    input: { name: `${slug} ${randomUUID().slice(0, 8)}`, role: 'TENANT_READER', tenantSlug: slug, expiresAt: expiresAt?.toISOString() },
  });
  assert.deepEqual(r.data.createApiKey.userErrors, []);
  return { id: r.data.createApiKey.apiKey.id, key: r.data.createApiKey.key };
}

before(async () => {
  t = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200', USAGE_IDLE_SAMPLE_MS: '1000' } });
  const r = await t.gql(PROVISION, { input: { slug: 'keyed', displayName: 'keyed', maxConnections: 5 } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
});
after(async () => {
  await t.cleanup();
});

describe('keys end their subscriptions', () => {
  test('revoking a key ends its graphql-ws subscription (KEY_REVOKED, then the socket closes with 4403) and its SSE stream (KEY_REVOKED, then complete)', async () => {
    const { id, key } = await keyFor(t, 'keyed');
    let closedWith = 0;
    const client = wsClient(t.url, key, (code) => (closedWith = code));
    const ws = subscribeWs(client, USAGE, { slug: 'keyed' }, pick);
    const sse = subscribeSse(t.url, key, USAGE, { slug: 'keyed' }, pick);
    const untouched = subscribeSse(t.url, t.adminKey, USAGE, { slug: 'keyed' }, pick);
    try {
      for (const sub of [ws, sse, untouched]) await until(() => sub.values.length, (n) => n > 0, 'a first value');
      const r = await t.gql(`mutation($id: ID!) { revokeApiKey(input: { id: $id }) { userErrors { code } } }`, { id });
      assert.deepEqual(r.data.revokeApiKey.userErrors, []);
      await until(() => closedWith, (c) => c !== 0, 'the socket to close');
      assert.equal(closedWith, 4403);
      assert.deepEqual(codesOf(ws.errors), ['KEY_REVOKED']);
      await until(() => sse.done, Boolean, 'the SSE stream to end');
      assert.deepEqual(codesOf(sse.errors), ['KEY_REVOKED']);
      assert.equal(sse.completed, true, 'the SSE stream completed rather than being cut');
      assert.equal(untouched.done, false, 'another key\'s subscription goes on');
      assert.match(await (await fetch(`${t.url}/metrics`)).text(), /^tenantry_subscriptions_ended_total\{reason="KEY_REVOKED"\} [1-9]/m);
    } finally {
      for (const s of [ws, sse, untouched]) s.stop();
      await client.dispose();
    }
  });

  test('a key reaching its expiresAt ends its subscriptions on both transports (KEY_EXPIRED, 4403)', async () => {
    const { key } = await keyFor(t, 'keyed', new Date(Date.now() + 3000));
    let closedWith = 0;
    const client = wsClient(t.url, key, (code) => (closedWith = code));
    const ws = subscribeWs(client, USAGE, { slug: 'keyed' }, pick);
    const sse = subscribeSse(t.url, key, USAGE, { slug: 'keyed' }, pick);
    try {
      for (const sub of [ws, sse]) await until(() => sub.values.length, (n) => n > 0, 'a first value');
      await until(() => closedWith, (c) => c !== 0, 'the socket to close at expiry');
      assert.equal(closedWith, 4403);
      assert.deepEqual(codesOf(ws.errors), ['KEY_EXPIRED']);
      await until(() => sse.done, Boolean, 'the SSE stream to end at expiry');
      assert.deepEqual(codesOf(sse.errors), ['KEY_EXPIRED']);
      assert.equal(sse.completed, true);
    } finally {
      for (const s of [ws, sse]) s.stop();
      await client.dispose();
    }
  });

  test('deprovisioning a tenant revokes its keys, which ends their subscriptions', async () => {
    const r = await t.gql(PROVISION, { input: { slug: 'doomed', displayName: 'doomed', maxConnections: 3 } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
    const { key } = await keyFor(t, 'doomed');
    let closedWith = 0;
    const client = wsClient(t.url, key, (code) => (closedWith = code));
    const ws = subscribeWs(client, USAGE, { slug: 'doomed' }, pick);
    // Open on the socket after the tenant's own stream completes (a lazy client closes an idle socket itself).
    const batches = subscribeWs(client, `subscription { connectionUsageBatch { sampledAt } }`, {}, (d) => d);
    const sse = subscribeSse(t.url, key, USAGE, { slug: 'doomed' }, pick);
    try {
      for (const sub of [ws, sse]) await until(() => sub.values.length, (n) => n > 0, 'a first value');
      const d = await t.gql(`mutation { deprovisionTenant(input: { slug: "doomed", confirm: "doomed" }) { userErrors { code } } }`);
      assert.deepEqual(d.data.deprovisionTenant.userErrors, []);
      // The stream may complete first (the tenant left the roster), or end with KEY_REVOKED.
      await until(() => sse.done, Boolean, 'the SSE stream to end');
      assert.equal(sse.completed, true);
      await until(() => closedWith, (c) => c !== 0, 'the socket to close');
      assert.equal(closedWith, 4403, 'the socket of a revoked key closes');
    } finally {
      for (const s of [ws, sse, batches]) s.stop();
      await client.dispose();
    }
  });
});

/** A graphql-ws client that stops reading its socket on demand, as a stuck subscriber does. */
async function stuckClient(url: string, key: string, queries: string[]): Promise<{ socket: WebSocket; firsts: Promise<void>; closed: Promise<{ code: number; reason: string }>; stall(): void; resume(): void }> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('open', resolve));
  let seen = 0;
  const firsts = new Promise<void>((resolve) => {
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.type === 'connection_ack') queries.forEach((query, i) => socket.send(JSON.stringify({ id: String(i), type: 'subscribe', payload: { query } })));
      if (message.type === 'next' && ++seen === queries.length) resolve();
    });
  });
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key}` } }));
  const raw = () => (socket as unknown as { _socket: import('node:net').Socket })._socket;
  return { socket, firsts, closed, stall: () => raw().pause(), resume: () => raw().resume() };
}

const BIG_BATCH = `subscription { connectionUsageBatch { sampledAt usage { tenantSlug current max usagePercent peak24h byState { state count } sampledAt } } }`;

/** Big batches straight onto the bus, as a leader of a large, busy fleet would publish them. */
function flood(tt: TestTenantry, batches: number, tenants: number): void {
  const sampler = tt.app.parts.usage.sampler(tt.app.parts.clusters.defaultCluster.id)!;
  const epoch = sampler.lease.epoch ?? 0;
  for (let b = 0; b < batches; b++) {
    const sampledAt = new Date().toISOString();
    const samples: TenantUsageSample[] = Array.from({ length: tenants }, (_, i) => ({
      tenantId: randomUUID(),
      tenantSlug: `flood-${b}-${i}`,
      clusterId: tt.app.parts.clusters.defaultCluster.id,
      current: 1,
      max: 10,
      usagePercent: 10,
      peak24h: 1,
      byState: [{ state: 'idle', count: 1 }],
      pooled: null,
      poolerIdle: null,
      direct: null,
      busiest: [],
      sampledAt,
    }));
    const batch: UsageBatch = { clusterId: tt.app.parts.clusters.defaultCluster.id, epoch, leader: 'flood', sampledAt, tenants: samples, removed: [], cluster: null };
    tt.app.parts.events.publishUsage(batch);
  }
}

describe('slow subscribers are dropped, never the server', () => {
  test('a graphql-ws subscriber that stops reading: its queue fills, it is dropped and its socket closes with 1013', async () => {
    const tt = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200', USAGE_SUBSCRIBER_QUEUE: '4' } });
    const healthy = wsClient(tt.url, tt.adminKey);
    try {
      await tt.gql(PROVISION, { input: { slug: 'steady', displayName: 'steady', maxConnections: 3 } });
      const fine = subscribeWs(healthy, `subscription { connectionUsageBatch { sampledAt } }`, {}, (d) => d.connectionUsageBatch);
      const stuck = await stuckClient(tt.url, tt.adminKey, [BIG_BATCH]);
      await tt.gql(`mutation { updateTenantQuota(input: { slug: "steady", maxConnections: 4 }) { userErrors { code } } }`);
      await stuck.firsts;
      stuck.stall();
      const dropped = () => tt.app.parts.usage.stats.dropped;
      for (let i = 0; i < 40 && dropped() === 0; i++) {
        flood(tt, 5, 1000);
        await new Promise((r) => setTimeout(r, 50));
      }
      await until(dropped, (n) => n >= 1, 'the stuck subscriber to be dropped');
      stuck.resume();
      const { code, reason } = await stuck.closed;
      assert.equal(code, 1013, reason);
      assert.match(reason, /subscriber too slow: a subscription fell too far behind/);
      // The server is fine, and so are the others.
      assert.equal((await tt.gql('{ __typename }')).status, 200);
      const heard = fine.values.length;
      await until(() => fine.values.length, (n) => n > heard, 'the healthy subscriber to go on');
      assert.deepEqual(fine.errors, []);
      fine.stop();
    } finally {
      await healthy.dispose();
      await tt.cleanup();
    }
  });

  test('a socket holding more than WS_MAX_BUFFERED_BYTES unsent is closed with 1013', async () => {
    const tt = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200', USAGE_SUBSCRIBER_QUEUE: '100000', WS_MAX_BUFFERED_BYTES: '65536' } });
    try {
      // One message of a 1,000-tenant batch is over 64 KiB by itself.
      const stuck = await stuckClient(tt.url, tt.adminKey, [BIG_BATCH]);
      flood(tt, 1, 10);
      await stuck.firsts;
      stuck.stall();
      let closed: { code: number; reason: string } | null = null;
      void stuck.closed.then((c) => (closed = c));
      for (let i = 0; i < 200 && tt.logs.every((l) => !/closing a slow graphql-ws socket/.test(l)); i++) {
        flood(tt, 2, 1000);
        await new Promise((r) => setTimeout(r, 50));
      }
      stuck.resume();
      await until(() => closed, Boolean, 'the socket to close');
      assert.equal(closed!.code, 1013);
      assert.match(closed!.reason, /bytes unsent/);
    } finally {
      await tt.cleanup();
    }
  });

  test('an SSE subscriber that stops reading is dropped with SUBSCRIBER_TOO_SLOW, then its stream completes', async () => {
    const tt = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200', USAGE_SUBSCRIBER_QUEUE: '4' } });
    const abort = new AbortController();
    try {
      const res = await fetch(`${tt.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${tt.adminKey}` },
        body: JSON.stringify({ query: `subscription { connectionUsageBatch { usage { tenantSlug } } }` }),
        signal: abort.signal,
      });
      const reader = res.body!.getReader();
      flood(tt, 1, 1);
      let text = '';
      while (!text.includes('event: next')) text += new TextDecoder().decode((await reader.read()).value);
      // Stops reading; the server keeps publishing.
      for (let i = 0; i < 200 && tt.app.parts.usage.stats.dropped === 0; i++) {
        flood(tt, 5, 1000);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(tt.app.parts.usage.stats.dropped >= 1, 'dropped');
      text = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      assert.match(text, /"code":"SUBSCRIBER_TOO_SLOW"/);
      assert.match(text, /event: complete/);
      assert.equal((await tt.gql('{ __typename }')).status, 200);
    } finally {
      abort.abort();
      await tt.cleanup();
    }
  });
});
