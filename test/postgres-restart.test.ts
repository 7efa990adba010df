// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
// Issue 9: the managed PostgreSQL (here also the control database's server, as with the
// embedded default) restarting during a fleet operation and during mutations costs at most
// the requests in flight: the server stays up, answers throughout, and the operation finishes.
// A server of this file's own (the embedded PostgreSQL 18), so restarting it disturbs nobody.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startEmbeddedServer, type EmbeddedServer } from '../src/platform/embedded/embedded-server.js';
import { createLogger } from '../src/platform/logger.js';
import { freePort } from './support/free-port.js';
import { until } from './support/subscriptions.js';
import { PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

let home: string;
let port: number;
let server: EmbeddedServer;
let t: TestTenantry;

const start = () => startEmbeddedServer({ home, port, logger: createLogger('silent') });

before(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'tenantry-restart-'));
  port = await freePort();
  server = await start();
  t = await startTestTenantry({
    serverUrl: server.url,
    env: { OPERATION_RESUME_INTERVAL_MS: '500', RECOVERY_INTERVAL_MS: '1000', LOCK_TIMEOUT_MS: '2000', POOL_ACQUIRE_TIMEOUT_MS: '2000' },
    // Each tenant's step takes a moment, so the restart lands in the middle of the operation.
    failpoints: { 'operation.item': () => new Promise((r) => setTimeout(r, 300)) },
  });
});
after(async () => {
  await t?.cleanup().catch(() => undefined);
  await server?.stop().catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

test('PostgreSQL restarting under a fleet operation and a stream of mutations: the server stays up, every request answers, the operation finishes', async () => {
  const slugs = Array.from({ length: 8 }, (_, i) => `restart-${i}`);
  for (const slug of slugs) {
    const r = (await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5, templateVersion: '1.0.0' } })).data.provisionTenant;
    assert.deepEqual(r.userErrors, []);
  }
  const started = await t.gql(`mutation { upgradeAllTenantSchemas(input: { concurrency: 1, canarySize: 0 }) { operation { id } userErrors { code } } }`);
  const id = started.data.upgradeAllTenantSchemas.operation.id;
  const progress = async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { status done total results { tenantSlug status message } } } }`, { id })).data?.node;
  await until(progress, (o: any) => o?.done >= 2, 'two tenants upgraded');

  // Mutations keep coming while the server goes down and comes back.
  let stop = false;
  const answers: { ok: boolean; what: string }[] = [];
  const stream = (async () => {
    for (let i = 0; !stop; i++) {
      const r = await fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${t.adminKey}` },
        body: JSON.stringify({ query: `mutation { updateTenantQuota(input: { slug: "restart-7", maxConnections: ${6 + (i % 5)} }) { userErrors { code } } }` }),
        signal: AbortSignal.timeout(30_000),
      });
      // Whatever it says, it answers (a timeout here would throw and fail the test).
      const body = (await r.json()) as any;
      answers.push({ ok: !body.errors && body.data?.updateTenantQuota?.userErrors?.length === 0, what: JSON.stringify(body.errors?.[0]?.extensions?.code ?? body.data?.updateTenantQuota?.userErrors?.[0]?.code ?? 'ok') });
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  await server.stop(); // a fast shutdown: every session is cut (57P01)
  await new Promise((r) => setTimeout(r, 500));
  server = await start();

  const done = await until(progress, (o: any) => o && !['PENDING', 'RUNNING'].includes(o.status), 'the operation to finish', 90_000);
  stop = true;
  await stream;
  assert.ok(['SUCCEEDED', 'COMPLETED_WITH_ERRORS'].includes(done.status), done.status);
  assert.equal(done.results.filter((r: any) => r.status === 'PENDING' || r.status === 'RUNNING').length, 0, 'no tenant left in flight');
  assert.ok(answers.length > 0);
  assert.ok(answers.some((a) => a.ok), `some mutations went through: ${answers.map((a) => a.what).join(', ')}`);

  // Afterwards the service works as before, and PostgreSQL agrees with the records.
  const r = await t.gql(`mutation { updateTenantQuota(input: { slug: "restart-7", maxConnections: 12 }) { quota { maxConnections } userErrors { code } } }`);
  assert.deepEqual(r.data.updateTenantQuota, { quota: { maxConnections: 12 }, userErrors: [] });
  await t.app.parts.recovery.run();
  const limits = await t.admin.query(`SELECT rolconnlimit FROM pg_roles WHERE rolname = $1`, [`${t.prefix}restart_7`]);
  assert.equal(limits.rows[0].rolconnlimit, 12);
  // Failed items (cut by the restart) are the operation's to report; running it again finishes them.
  const again = await t.gql(`mutation { upgradeAllTenantSchemas(input: { concurrency: 2, canarySize: 0 }) { operation { id } } }`);
  const second = again.data.upgradeAllTenantSchemas.operation.id;
  const finished = await until(
    async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { status failed } } }`, { id: second })).data.node,
    (o: any) => !['PENDING', 'RUNNING'].includes(o.status),
    'the second operation',
    60_000,
  );
  assert.deepEqual(finished, { status: 'SUCCEEDED', failed: 0 });
  const versions = await t.gql(`{ tenants(first: 20) { edges { node { slug schemaVersion { version } } } } }`);
  assert.ok(versions.data.tenants.edges.every((e: any) => e.node.schemaVersion.version === '1.1.0'));
});
