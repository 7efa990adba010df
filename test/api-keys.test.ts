// @test-slow: started first (scripts/run-tests.ts)
// @test-scope once: keys live in the control database, which the control plane owns on any server and with any privileges.
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { PROVISION, DEPROVISION, fewestStatements, settle, startTestTenantry, type GraphQLResponse, type TestTenantry } from './support/test-tenantry.js';
import { until, wsClient } from './support/subscriptions.js';

// Redis runs on CI (.ci/run starts it); elsewhere the replica test is skipped without it.
const redisReachable = await new Promise<boolean>((resolve) => {
  const socket = createConnection({ host: '127.0.0.1', port: 6379 }, () => {
    socket.end();
    resolve(true);
  });
  socket.on('error', () => resolve(false));
});
const noRedis = redisReachable || process.env.CI === 'true' ? false : 'Redis is not running on 127.0.0.1:6379; with CI=true this fails';

let t: TestTenantry;

const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id role expiresAt } userErrors { code field message } } }`;
const REVOKE_KEY = `mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { id revokedAt } userErrors { code field message } } }`;
const VIEWER = '{ viewer { role keyName } }';
const code = (r: GraphQLResponse) => r.errors?.[0]?.extensions?.code;

async function createKey(input: Record<string, unknown>, as = t.adminKey) {
  const r = await t.gql(CREATE_KEY, { input }, as);
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  assert.deepEqual(r.data.createApiKey.userErrors, []);
  return r.data.createApiKey as { key: string; apiKey: { id: string; role: string; expiresAt: string | null } };
}

async function audit(filter: Record<string, string>, first = 20) {
  const r = await t.gql(`query($f: AuditEventFilter) { auditEvents(first: ${first}, filter: $f) { edges { node { action actor subject metadata tenantSlug } } } }`, { f: filter });
  return r.data.auditEvents.edges.map((e: any) => e.node) as { action: string; actor: string; subject: string | null; metadata: any; tenantSlug: string | null }[];
}

before(async () => {
  // A long cache: whatever ends a key's life on this server within the test is the push, not the time-out.
  t = await startTestTenantry({ env: { API_KEY_CACHE_MS: '600000' } });
  for (const slug of ['keyed', 'doomed']) {
    const r = await t.gql(PROVISION, { input: { slug, displayName: slug } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
  }
});
after(() => t.cleanup());

describe('the key cache', () => {
  test('a known key costs no control-database read; last use is written at most once a minute', async () => {
    const { key, apiKey } = await createKey({ name: 'busy reader', role: 'TENANT_READER', tenantSlug: 'keyed' });
    await settle(t);
    const before = t.app.parts.controlQueries.queries;
    assert.equal((await t.gql(VIEWER, {}, key)).data.viewer.role, 'TENANT_READER');
    const firstUse = t.app.parts.controlQueries.queries - before;
    assert.ok(firstUse >= 2, `the first use reads the key and records its use (${firstUse} statements)`);
    const warm = await fewestStatements(t, async () => {
      for (let i = 0; i < 10; i++) assert.equal((await t.gql(VIEWER, {}, key)).data.viewer.role, 'TENANT_READER');
    });
    assert.equal(warm.statements, 0, 'ten more requests read nothing from the control database');
    const row = await t.app.parts.db.apiKey.findUniqueOrThrow({ where: { id: localId(apiKey.id) } });
    assert.ok(row.lastUsedAt, 'last use is recorded');
  });

  test('a revoked key stops working at once on the server that revoked it, though it was cached', async () => {
    const { key, apiKey } = await createKey({ name: 'short', role: 'TENANT_READER', tenantSlug: 'keyed' });
    assert.equal((await t.gql(VIEWER, {}, key)).data.viewer.role, 'TENANT_READER');
    const r = await t.gql(REVOKE_KEY, { id: apiKey.id });
    assert.deepEqual(r.data.revokeApiKey.userErrors, []);
    const after = await t.gql(VIEWER, {}, key);
    assert.equal(code(after), 'UNAUTHENTICATED');
    assert.match(after.errors![0]!.message, /revoked/);
  });

  test('deprovisioning revokes the tenant\'s keys, cached or not, and announces them on keys:revoked', async () => {
    const { key, apiKey } = await createKey({ name: 'doomed admin', role: 'TENANT_ADMIN', tenantSlug: 'doomed' });
    assert.equal((await t.gql(VIEWER, {}, key)).data.viewer.role, 'TENANT_ADMIN');
    const heard = t.app.parts.events.keysRevoked()[Symbol.asyncIterator]();
    const next = heard.next();
    const d = await t.gql(DEPROVISION, { input: { slug: 'doomed', confirm: 'doomed' } });
    assert.deepEqual(d.data.deprovisionTenant.userErrors, []);
    assert.ok(((await next).value as { keyIds: string[] }).keyIds.includes(localId(apiKey.id)));
    await heard.return?.();
    assert.equal(code(await t.gql(VIEWER, {}, key)), 'UNAUTHENTICATED');
  });

  test('with several replicas (Redis), a revocation reaches every replica\'s cache', { skip: noRedis }, async () => {
    const env = { REDIS_URL: 'redis://127.0.0.1:6379', API_KEY_CACHE_MS: '600000' };
    const a = await startTestTenantry({ env });
    const b = await startTestTenantry({ env, shareWith: a });
    try {
      await a.gql(PROVISION, { input: { slug: 'replicated', displayName: 'r' } });
      const created = (await a.gql(CREATE_KEY, { input: { name: 'everywhere', role: 'TENANT_READER', tenantSlug: 'replicated' } })).data.createApiKey;
      // Both replicas have it cached.
      assert.equal((await a.gql(VIEWER, {}, created.key)).data.viewer.role, 'TENANT_READER');
      assert.equal((await b.gql(VIEWER, {}, created.key)).data.viewer.role, 'TENANT_READER');
      const warm = await fewestStatements(b, async () => assert.equal((await b.gql(VIEWER, {}, created.key)).data.viewer.role, 'TENANT_READER'));
      assert.equal(warm.statements, 0, 'b serves the key from its cache');

      const r = await a.gql(REVOKE_KEY, { id: created.apiKey.id });
      assert.deepEqual(r.data.revokeApiKey.userErrors, []);
      assert.equal(code(await a.gql(VIEWER, {}, created.key)), 'UNAUTHENTICATED');
      // b's cache would keep the key ten minutes: only the push through Redis can end it.
      await until(async () => code(await b.gql(VIEWER, {}, created.key)), (c) => c === 'UNAUTHENTICATED', 'b to drop the revoked key');
    } finally {
      await b.stop();
      await a.cleanup();
      await b.cleanup().catch(() => undefined);
    }
  });
});

function localId(globalId: string): string {
  const decoded = Buffer.from(globalId, 'base64').toString('utf8');
  return decoded.slice(decoded.indexOf(':') + 1);
}

describe('keys a TENANT_ADMIN creates', () => {
  test('cannot outlive their creator: its expiry is the default and the latest allowed', async () => {
    const expiresAt = new Date(Date.now() + 3600_000);
    const creator = await createKey({ name: 'expiring admin', role: 'TENANT_ADMIN', tenantSlug: 'keyed', expiresAt: expiresAt.toISOString() });
    const child = await createKey({ name: 'child', role: 'TENANT_READER', tenantSlug: 'keyed' }, creator.key);
    assert.equal(child.apiKey.expiresAt, expiresAt.toISOString());
    const later = await t.gql(CREATE_KEY, { input: { name: 'too long', role: 'TENANT_READER', tenantSlug: 'keyed', expiresAt: new Date(expiresAt.getTime() + 86_400_000).toISOString() } }, creator.key);
    assert.deepEqual(later.data.createApiKey.userErrors.map((e: any) => [e.code, e.field]), [['INVALID_INPUT', 'expiresAt']]);
    assert.match(later.data.createApiKey.userErrors[0].message, /cannot outlive/);
    assert.equal(later.data.createApiKey.key, null);
    const sooner = new Date(Date.now() + 600_000).toISOString();
    assert.equal((await createKey({ name: 'brief', role: 'TENANT_READER', tenantSlug: 'keyed', expiresAt: sooner }, creator.key)).apiKey.expiresAt, sooner);
    // Nor outrank it.
    const up = await t.gql(CREATE_KEY, { input: { name: 'up', role: 'ADMIN' } }, creator.key);
    assert.deepEqual(up.data.createApiKey.userErrors.map((e: any) => e.code), ['FORBIDDEN']);
  });

  test('are revoked with their creator, down the line, with an audit event each and one announcement', async () => {
    const creator = await createKey({ name: 'lead admin', role: 'TENANT_ADMIN', tenantSlug: 'keyed' });
    const deputy = await createKey({ name: 'deputy', role: 'TENANT_ADMIN', tenantSlug: 'keyed' }, creator.key);
    const reader = await createKey({ name: 'deputy reader', role: 'TENANT_READER', tenantSlug: 'keyed' }, deputy.key);
    const independent = await createKey({ name: 'admin-made', role: 'TENANT_READER', tenantSlug: 'keyed' });
    for (const k of [creator, deputy, reader, independent]) assert.ok((await t.gql(VIEWER, {}, k.key)).data.viewer);

    const heard = t.app.parts.events.keysRevoked()[Symbol.asyncIterator]();
    const next = heard.next();
    const r = await t.gql(REVOKE_KEY, { id: creator.apiKey.id });
    assert.deepEqual(r.data.revokeApiKey.userErrors, []);
    const announced = ((await next).value as { keyIds: string[] }).keyIds;
    await heard.return?.();
    assert.deepEqual(new Set(announced), new Set([creator, deputy, reader].map((k) => localId(k.apiKey.id))));

    for (const k of [creator, deputy, reader]) assert.equal(code(await t.gql(VIEWER, {}, k.key)), 'UNAUTHENTICATED');
    assert.equal((await t.gql(VIEWER, {}, independent.key)).data.viewer.role, 'TENANT_READER', 'a key the creator did not make lives on');
    const events = await audit({ action: 'apikey.revoked' }, 50);
    for (const k of [creator, deputy, reader]) assert.ok(events.some((e) => e.subject === localId(k.apiKey.id)), `an audit event for ${k.apiKey.id}`);

    // A revoked key creates nothing, whatever its cache says.
    const late = await t.gql(CREATE_KEY, { input: { name: 'late', role: 'TENANT_READER', tenantSlug: 'keyed' } }, deputy.key);
    assert.equal(code(late), 'UNAUTHENTICATED');
  });
});

describe('actors and failed authentications', () => {
  test('the actor in audit events and quota history is the key\'s name and id, never key text', async () => {
    const { key, apiKey } = await createKey({ name: 'quota setter', role: 'ADMIN' });
    const r = await t.gql(`mutation { updateTenantQuota(input: { slug: "keyed", maxConnections: 30, reason: "actor" }) { quota { history(first: 1) { actor } } userErrors { code } } }`, {}, key);
    assert.deepEqual(r.data.updateTenantQuota.userErrors, []);
    const actor = r.data.updateTenantQuota.quota.history[0].actor as string;
    assert.equal(actor, `quota setter (apikey:${localId(apiKey.id)})`);
    assert.ok(!actor.includes(key.slice(0, 11)) && !actor.includes('tnry_'));
    const [event] = await audit({ action: 'quota.updated', tenantSlug: 'keyed' }, 1);
    assert.equal(event!.actor, actor);
    const named = await t.gql(CREATE_KEY, { input: { name: `copy of ${key.slice(0, 20)}`, role: 'ADMIN' } });
    assert.deepEqual(named.data.createApiKey.userErrors.map((e: any) => [e.code, e.field]), [['INVALID_INPUT', 'name']]);
  });

  test('failed authentications are logged and audited with reason, source address and transport, never the key', async () => {
    const unknown = `tnry_${'7'.repeat(64)}`;
    assert.equal(code(await t.gql(VIEWER, {}, unknown)), 'UNAUTHENTICATED');
    const { key, apiKey } = await createKey({ name: 'to fail', role: 'TENANT_READER', tenantSlug: 'keyed' });
    await t.gql(REVOKE_KEY, { id: apiKey.id });
    assert.equal(code(await t.gql(VIEWER, {}, key)), 'UNAUTHENTICATED');
    const closed = await new Promise<number>((resolve) => {
      const client = wsClient(t.url, unknown, resolve);
      client.subscribe({ query: '{ viewer { role } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    });
    assert.equal(closed, 4403);

    const failures = await audit({ action: 'auth.failed' }, 50);
    const byReason = (reason: string, transport: string) => failures.find((e) => e.metadata.reason === reason && e.metadata.transport === transport);
    assert.deepEqual(byReason('UNKNOWN', 'http')?.metadata, { reason: 'UNKNOWN', sourceAddress: '127.0.0.1', transport: 'http', keyId: null });
    assert.equal(byReason('UNKNOWN', 'http')?.actor, 'anonymous');
    assert.equal(byReason('REVOKED', 'http')?.subject, localId(apiKey.id));
    assert.ok(byReason('UNKNOWN', 'graphql-ws'), JSON.stringify(failures.map((f) => f.metadata)));
    const dump = JSON.stringify(failures);
    assert.ok(!dump.includes(unknown.slice(5, 20)) && !dump.includes(key.slice(5, 20)), 'no key text in the audit trail');
    const logged = t.logs.filter((l) => l.includes('authentication failed'));
    assert.ok(logged.some((l) => l.includes('"reason":"UNKNOWN"') && l.includes('"sourceAddress":"127.0.0.1"')));
    assert.ok(!logged.join('').includes(unknown.slice(5, 20)) && !logged.join('').includes(key.slice(5, 20)));
  });
});

describe('rate limiting per source address', () => {
  let limited: TestTenantry;
  before(async () => {
    limited = await startTestTenantry({ env: { AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW_MS: '600000', TRUST_PROXY: 'true' } });
  });
  after(() => limited.cleanup());

  const from = (address: string, key: string | null) =>
    fetch(`${limited.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': address, ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ query: VIEWER }),
    });

  test('past AUTH_FAILURE_LIMIT failures an address gets 429 RATE_LIMITED, even with a good key; others are not affected', async () => {
    const attacker = '203.0.113.7';
    for (let i = 0; i < 3; i++) {
      const res = await from(attacker, `tnry_${String(i).repeat(64)}`);
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as GraphQLResponse).errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
    }
    // Missing keys are not attempts: they do not count.
    assert.equal((await from(attacker, null)).status, 200);
    for (const key of [`tnry_${'9'.repeat(64)}`, limited.adminKey]) {
      const res = await from(attacker, key);
      assert.equal(res.status, 429);
      assert.ok(Number(res.headers.get('retry-after')) > 0);
      const body = (await res.json()) as GraphQLResponse;
      assert.equal(body.errors?.[0]?.extensions?.code, 'RATE_LIMITED');
      assert.match(body.errors![0]!.message, /too many failed authentications.*AUTH_FAILURE_LIMIT/);
    }
    const other = await from('198.51.100.9', limited.adminKey);
    assert.equal(other.status, 200);
    assert.equal(((await other.json()) as GraphQLResponse).data.viewer.role, 'ADMIN');

    // graphql-ws: the connection_init of a limited address closes the socket with 4429.
    class FromAttacker extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { headers: { 'x-forwarded-for': attacker } });
      }
    }
    const closed = await new Promise<{ code: number; reason: string }>((resolve) => {
      const client = createClient({
        url: `${limited.url.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: FromAttacker,
        connectionParams: { authorization: `Bearer ${limited.adminKey}` },
        retryAttempts: 0,
        on: { closed: (e) => resolve({ code: (e as { code: number }).code, reason: (e as { reason: string }).reason }) },
      });
      client.subscribe({ query: '{ viewer { role } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    });
    assert.equal(closed.code, 4429);
    assert.match(closed.reason, /RATE_LIMITED/);

    const r = await limited.gql(`{ auditEvents(first: 20, filter: { action: "auth.rate_limited" }) { edges { node { metadata } } } }`);
    assert.equal(r.data.auditEvents.edges.length, 1, 'the block is audited once');
    assert.equal(r.data.auditEvents.edges[0].node.metadata.sourceAddress, attacker);
    const failed = await limited.gql(`{ auditEvents(first: 20, filter: { action: "auth.failed" }) { edges { node { metadata } } } }`);
    assert.equal(failed.data.auditEvents.edges.length, 3, 'refused attempts are not audited one by one');
  });
});
