// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
// A fleet operation whose record of one item cannot be written (the control database) lets go
// of the operation only once every item in flight has ended: whoever resumes it never runs an
// item while the first run still does, and the operation ends with each count right.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { until } from './support/subscriptions.js';
import { TestTemplates } from './support/templates.js';
import { PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

let t: TestTenantry;
let templates: TestTemplates;

let release!: () => void;
const held = new Promise<void>((resolve) => (release = resolve));
/** How many times a run reached oi-slow's item. */
let slowRuns = 0;
let recordFailed!: () => void;
const recordFailedOnce = new Promise<void>((resolve) => (recordFailed = resolve));
let failed = false;

before(async () => {
  templates = await TestTemplates.create();
  const manifest = (v: string) => ({ description: `two steps ${v}`, tables: ['notes'], extensions: { required: [] } });
  await templates.add('twosteps', '1.0.0', manifest('1.0.0'), 'CREATE TABLE notes (id int PRIMARY KEY);');
  await templates.add('twosteps', '1.1.0', manifest('1.1.0'), 'ALTER TABLE notes ADD COLUMN body text;');
  t = await startTestTenantry({
    env: { TEMPLATES_DIR: templates.dir, OPERATION_RESUME_INTERVAL_MS: '200' },
    failpoints: {
      'operation.item': async ({ tenantSlug }) => {
        if (tenantSlug !== 'oi-slow') return;
        slowRuns++;
        await held;
      },
      'operation.item.recorded': ({ tenantSlug }) => {
        if (tenantSlug !== 'oi-broken' || failed) return;
        failed = true;
        recordFailed();
        throw new Error('injected: the item\'s record could not be written');
      },
    },
  });
});
after(async () => {
  release();
  await t.cleanup();
  await templates.remove();
});

test('an item whose record fails: the run waits for the items in flight before letting go; resumed, the operation ends SUCCEEDED with each item run once more at most', async () => {
  for (const slug of ['oi-a', 'oi-broken', 'oi-slow']) {
    const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 10, template: 'twosteps', templateVersion: '1.0.0' } });
    assert.deepEqual(r.data.provisionTenant.userErrors, [], slug);
  }
  const started = await t.gql(`mutation { upgradeAllTenantSchemas(input: { template: "twosteps", concurrency: 2, canary: ["oi-a"] }) { operation { id total } userErrors { code message } } }`);
  assert.deepEqual(started.data.upgradeAllTenantSchemas.userErrors, []);
  const id = started.data.upgradeAllTenantSchemas.operation.id;
  assert.equal(started.data.upgradeAllTenantSchemas.operation.total, 3);

  // oi-broken's record fails while oi-slow is held in its item.
  await recordFailedOnce;
  await until(() => slowRuns, (n) => n >= 1, 'oi-slow running');
  // Several resume intervals: a run that had let go would be resumed now and start oi-slow again.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  assert.equal(slowRuns, 1, 'nobody ran oi-slow again while the first run still did');

  release();
  const op = await until(
    async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { status done failed results { tenantSlug status } } } }`, { id })).data.node,
    (o: any) => o.status !== 'RUNNING' && o.status !== 'PENDING',
    'the operation to end',
    60_000,
  );
  assert.equal(op.status, 'SUCCEEDED', JSON.stringify(op));
  assert.deepEqual([op.done, op.failed], [3, 0], JSON.stringify(op));
  assert.deepEqual(op.results.map((r: { status: string }) => r.status), ['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
  assert.equal(slowRuns, 1, 'oi-slow ran once: its record was written');
});
