// @test-scope once: the HTTP protocol does not depend on the server under test or on privileges.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { serverAudits } from 'graphql-http';
import { startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

// The GraphQL-over-HTTP specification's own audit suite (graphql-http), run against /graphql
// with an admin key: every audit, MUST, SHOULD and MAY, passes (61 in graphql-http 1.23).

let t: TestTenantry;
before(async () => {
  t = await startTestTenantry();
});
after(() => t?.cleanup());

test('/graphql passes the whole GraphQL-over-HTTP audit', async () => {
  const fetchFn = (input: RequestInfo | URL, init?: RequestInit) => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${t.adminKey}`);
    return fetch(input, { ...init, headers });
  };
  const results = [];
  for (const audit of serverAudits({ url: `${t.url}/graphql`, fetchFn })) {
    const result = await audit.fn();
    results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.status === 'ok' ? '' : result.reason });
  }
  const notOk = results.filter((r) => r.status !== 'ok');
  console.log(`GraphQL-over-HTTP audit: ${results.length - notOk.length}/${results.length} ok`);
  assert.deepEqual(notOk, [], JSON.stringify(notOk, null, 2));
  assert.ok(results.length > 30, `the audit ran only ${results.length} checks`);
});
