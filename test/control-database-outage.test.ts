// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
// Issue 14, item 8: while the control database is down, requests got HTTP 500 /
// INTERNAL_SERVER_ERROR ("unexpected error while authenticating" once the key cache expired),
// and readiness said it was down for up to READINESS_INTERVAL_MS after it was back. Now every
// transport answers SERVICE_UNAVAILABLE (503, Retry-After, retryable), and readiness follows the
// outage both ways within about a second. A PostgreSQL server of this file's own (the embedded
// PostgreSQL 18, like test/postgres-restart.test.ts) is stopped and started again.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startEmbeddedServer, type EmbeddedServer } from '../src/platform/embedded/embedded-server.js';
import { createLogger } from '../src/platform/logger.js';
import { freePort } from './support/free-port.js';
import { until, wsClient } from './support/subscriptions.js';
import { PROVISION, startTestTenantry, type GraphQLResponse, type TestTenantry } from './support/test-tenantry.js';

let home: string;
let port: number;
let server: EmbeddedServer;
let t: TestTenantry;
/** An ADMIN key never used before the outage, so no process has it cached: it must be looked up. */
let uncachedKey: string;

const start = () => startEmbeddedServer({ home, port, logger: createLogger('silent') });

before(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'tenantry-outage-'));
  port = await freePort();
  server = await start();
  // The admin key stays cached through the outage, so its requests reach the resolvers.
  t = await startTestTenantry({ serverUrl: server.url, env: { API_KEY_CACHE_MS: '600000', INTERNAL_ENDPOINTS_AUTH: 'admin' } });
  const r = await t.gql(PROVISION, { input: { slug: 'outage', displayName: 'outage' } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
  uncachedKey = (await t.gql(`mutation { createApiKey(input: { name: "uncached", role: ADMIN }) { key } }`)).data.createApiKey.key;
});
after(async () => {
  await t?.cleanup().catch(() => undefined);
  await server?.stop().catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

async function post(query: string, key: string) {
  const res = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as GraphQLResponse };
}

/** The control-database check of /health/ready (the admin key is cached, so this needs no database). */
async function controlDatabaseCheck(): Promise<{ ok: boolean; detail: string }> {
  const res = await fetch(`${t.url}/health/ready`, { headers: { authorization: `Bearer ${t.adminKey}` } });
  const report = (await res.json()) as { checks: { name: string; ok: boolean; detail: string }[] };
  return report.checks.find((c) => c.name === 'control-database')!;
}

function assertUnavailable(r: Awaited<ReturnType<typeof post>>, what: string) {
  assert.equal(r.status, 503, `${what}: ${JSON.stringify(r.body)}`);
  assert.ok(Number(r.retryAfter) > 0, `${what}: Retry-After ${r.retryAfter}`);
  const error = r.body.errors?.[0];
  assert.equal(error?.extensions?.code, 'SERVICE_UNAVAILABLE', `${what}: ${JSON.stringify(r.body)}`);
  const extensions = error!.extensions as { retryable?: boolean; retryAfterSeconds?: number; correlationId?: string };
  assert.equal(extensions.retryable, true);
  assert.equal(extensions.retryAfterSeconds, Number(r.retryAfter));
  assert.ok(t.logs.some((l) => l.includes(extensions.correlationId!)), `${what}: logged under the correlation id the caller got`);
}

test('the control database down: 503 SERVICE_UNAVAILABLE with Retry-After on every transport, readiness follows it down and back up', async () => {
  assert.equal((await post('{ viewer { role } }', t.adminKey)).body.data.viewer.role, 'ADMIN');
  assert.equal((await controlDatabaseCheck()).ok, true);

  await server.stop();

  // A key that must be looked up: authentication cannot reach the control database.
  const auth = await post('{ viewer { role } }', uncachedKey);
  assertUnavailable(auth, 'authentication');
  assert.match(auth.body.errors![0]!.message, /cannot reach the control database/);
  // A cached key: the resolvers cannot reach it (a query, and a mutation).
  assertUnavailable(await post('{ tenants(first: 5) { edges { node { slug } } } }', t.adminKey), 'a query');
  assertUnavailable(await post('mutation { updateTenantQuota(input: { slug: "outage", maxConnections: 20 }) { userErrors { code } } }', t.adminKey), 'a mutation');

  // graphql-ws: connection_init closes with 1013 (try again later).
  const closed = await new Promise<{ code: number; reason: string }>((resolve) => {
    const client = wsClient(t.url, uncachedKey);
    client.on('closed', (e) => resolve({ code: (e as { code: number }).code, reason: (e as { reason: string }).reason }));
    client.subscribe({ query: '{ viewer { role } }' }, { next: () => {}, error: () => {}, complete: () => {} });
  });
  assert.deepEqual({ ...closed, reason: closed.reason.split(':')[0] }, { code: 1013, reason: 'SERVICE_UNAVAILABLE' });

  // The internal endpoints behind an ADMIN key: 503 too, not 500.
  const metrics = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${uncachedKey}` } });
  assert.equal(metrics.status, 503);
  assert.ok(Number(metrics.headers.get('retry-after')) > 0);
  assert.equal(((await metrics.json()) as { code: string }).code, 'SERVICE_UNAVAILABLE');

  // Readiness (READINESS_INTERVAL_MS is 10 minutes in tests) heard of it from the requests.
  const down = await until(controlDatabaseCheck, (c) => !c.ok, 'readiness to report the control database down', 10_000);
  assert.match(down.detail, /unreachable/);

  server = await start();

  // ...and, re-checking every second while it is down, sees it back.
  await until(controlDatabaseCheck, (c) => c.ok, 'readiness to report the control database back', 15_000);
  const back = await post('{ viewer { role } }', uncachedKey);
  assert.equal(back.status, 200, JSON.stringify(back.body));
  assert.equal(back.body.data.viewer.role, 'ADMIN');
});
