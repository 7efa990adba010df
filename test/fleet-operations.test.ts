// @test-slow: started first (scripts/run-tests.ts)
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { generateApiKey } from '../src/modules/keys/api-keys.js';
import { freePort } from './support/free-port.js';
import { subscribeWs, until, wsClient } from './support/subscriptions.js';
import { dropEverythingOf, PROVISION, startTestTenantry, testServerUrl, type TestTenantry, controlPlaneUrl } from './support/test-tenantry.js';
import { inDatabase, TestTemplates, downgradeTrgm } from './support/templates.js';

let t: TestTenantry;
let templates: TestTemplates;
let dir: string;
const addTemplate = (name: string, version: string, sql: string) =>
  templates.add(name, version, { description: `${name} ${version}`, tables: ['notes'], extensions: { required: [] } }, sql);


before(async () => {
  templates = await TestTemplates.create();
  dir = templates.dir;
  await addTemplate('fragile', '1.0.0', 'CREATE TABLE notes (id int PRIMARY KEY);');
  await addTemplate('fragile', '1.1.0', 'SELECT 1 / 0;');
  // Each upgrade takes a moment, so a server can be killed in the middle of an operation.
  await addTemplate('slow', '1.0.0', 'CREATE TABLE notes (id int PRIMARY KEY);');
  await addTemplate('slow', '1.1.0', 'SELECT pg_sleep(0.4);\nALTER TABLE notes ADD COLUMN body text;');
  // A correct step that a tenant can get in the way of by creating its column first.
  await addTemplate('owncol', '1.0.0', 'CREATE TABLE notes (id int PRIMARY KEY);');
  await addTemplate('owncol', '1.1.0', 'ALTER TABLE notes ADD COLUMN body text;');
  await addTemplate('owncol', '1.2.0', 'ALTER TABLE notes ADD COLUMN extra int;');
  // A broken step whose error looks like a tenant's own doing: the column already exists in 1.0.0.
  await addTemplate('dupcol', '1.0.0', 'CREATE TABLE notes (id int PRIMARY KEY, body text);');
  await addTemplate('dupcol', '1.1.0', 'ALTER TABLE notes ADD COLUMN body text;');
  await addTemplate('picky', '1.0.0', 'CREATE TABLE notes (id int PRIMARY KEY);');
  await addTemplate('picky', '1.1.0', 'ALTER TABLE notes ADD COLUMN body text;');
  t = await startTestTenantry({ env: { TEMPLATES_DIR: dir } });
});
after(async () => {
  await t.cleanup();
  await templates.remove();
});


const OPERATION = `id kind status total done failed succeeded canarySize pickedCanaries excluded startedAt finishedAt error
  results(first: 100) { tenantSlug position status message fromVersion toVersion canary failureCause }`;

/** Starts an operation (the mutation's input as GraphQL text) and waits for it to finish. */
async function runOperation(mutation: 'upgradeAllTenantSchemas' | 'updateAllTenantExtensions', input: string): Promise<any> {
  const started = await t.gql(`mutation { ${mutation}(input: ${input}) { operation { id } userErrors { code field message } } }`);
  assert.deepEqual(started.data[mutation].userErrors, []);
  const id = started.data[mutation].operation.id;
  return until(
    async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { ${OPERATION} } } }`, { id })).data.node,
    (o: any) => o.finishedAt !== null,
    'the operation to finish',
    60_000,
  );
}

const provisionAll = async (template: string, slugs: string[]) => {
  for (const slug of slugs) {
    const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5, template, templateVersion: '1.0.0' } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
  }
};

describe('upgradeAllTenantSchemas', () => {
  test('20 tenants, 2 made to fail after the canary: 18 upgraded, 2 reported, both counts, watched to the end', async () => {
    const slugs = Array.from({ length: 20 }, (_, i) => `fleet-${String(i).padStart(2, '0')}`);
    for (const slug of slugs) {
      const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5, templateVersion: '1.0.0' } });
      assert.deepEqual(r.data.provisionTenant.userErrors, []);
    }
    // Two tenants already hold an index by the name 1.1.0 creates: that step fails there.
    for (const slug of ['fleet-17', 'fleet-19']) {
      await inDatabase(`${t.prefix}${slug.replace('-', '_')}`, (c) => c.query(`CREATE INDEX idx_documents_deleted_at ON documents (updated_at)`));
    }

    const started = await t.gql(`mutation { upgradeAllTenantSchemas(input: { concurrency: 4, canarySize: 3 }) { operation { id status total canarySize } userErrors { code message } } }`);
    const { id, total, canarySize } = started.data.upgradeAllTenantSchemas.operation;
    assert.deepEqual([total, canarySize], [20, 3]);

    const client = wsClient(t.url, t.adminKey);
    const watch = subscribeWs(client, `subscription($id: ID!) { operation(id: $id) { status done failed } }`, { id }, (d) => d.operation);
    try {
      await until(() => watch.done, Boolean, 'the subscription to end with the operation', 60_000);
    } finally {
      await client.dispose();
    }
    const progress = watch.values.map((v: any) => v.done);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress only moves forward');
    assert.deepEqual(watch.values.at(-1), { status: 'COMPLETED_WITH_ERRORS', done: 20, failed: 2 });

    const op = (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { ${OPERATION} } } }`, { id })).data.node;
    assert.deepEqual([op.status, op.total, op.done, op.failed, op.succeeded], ['COMPLETED_WITH_ERRORS', 20, 20, 2, 18]);
    const failed = op.results.filter((r: any) => r.status === 'FAILED');
    assert.deepEqual(failed.map((r: any) => r.tenantSlug), ['fleet-17', 'fleet-19']);
    for (const r of failed) {
      assert.match(r.message, /step 1\.1\.0 failed: relation "idx_documents_deleted_at" already exists/);
      assert.equal(r.toVersion, '1.0.0');
    }
    const versions = await t.app.parts.db.tenantSchemaVersion.findMany({ where: { tenant: { slug: { in: slugs } } }, include: { tenant: true } });
    const at = (v: string) => versions.filter((x) => x.version === v).map((x) => x.tenant.slug).sort();
    assert.equal(at('1.1.0').length, 18);
    assert.deepEqual(at('1.0.0'), ['fleet-17', 'fleet-19']);

    const listed = await t.gql(`{ operations(first: 5) { edges { node { id kind status } } } }`);
    assert.deepEqual(listed.data.operations.edges[0].node, { id, kind: 'UPGRADE_SCHEMAS', status: 'COMPLETED_WITH_ERRORS' });
  });

  test('a failing canary stops the operation: the rest is skipped and untouched', async () => {
    for (const slug of ['canary-a', 'canary-b', 'canary-c']) {
      await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5, template: 'fragile', templateVersion: '1.0.0' } });
    }
    const started = await t.gql(`mutation { upgradeAllTenantSchemas(input: { template: "fragile", canarySize: 1 }) { operation { id } } }`);
    const id = started.data.upgradeAllTenantSchemas.operation.id;
    const op = await until(
      async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { ${OPERATION} } } }`, { id })).data.node,
      (o: any) => o.finishedAt !== null,
      'the operation to finish',
    );
    assert.equal(op.status, 'FAILED');
    assert.match(op.error, /the canary failed on canary-a/);
    assert.match(op.error, /the step itself failed there, not the tenant's own objects/);
    assert.deepEqual(op.results.map((r: any) => [r.tenantSlug, r.status, r.failureCause]), [['canary-a', 'FAILED', 'STEP'], ['canary-b', 'SKIPPED', null], ['canary-c', 'SKIPPED', null]]);
    const b = await t.gql(`{ tenant(slug: "canary-b") { schemaVersion { version } } }`);
    assert.equal(b.data.tenant.schemaVersion.version, '1.0.0');
  });

  test('a canary whose own objects are in the way (it made the step\'s column first) fails alone: the next tenant takes its place and the fleet goes on', async () => {
    await provisionAll('owncol', ['own-a', 'own-b', 'own-c', 'own-d']);
    await inDatabase(`${t.prefix}own_a`, (c) => c.query('ALTER TABLE notes ADD COLUMN body text'));
    const op = await runOperation('upgradeAllTenantSchemas', '{ template: "owncol", targetVersion: "1.1.0", canarySize: 1 }');
    assert.equal(op.status, 'COMPLETED_WITH_ERRORS', JSON.stringify(op));
    assert.deepEqual([op.total, op.done, op.failed, op.succeeded], [4, 4, 1, 3]);
    assert.deepEqual(
      op.results.map((r: any) => [r.tenantSlug, r.status, r.canary, r.failureCause]),
      [
        ['own-a', 'FAILED', true, 'TENANT'],
        ['own-b', 'SUCCEEDED', true, null],
        ['own-c', 'SUCCEEDED', false, null],
        ['own-d', 'SUCCEEDED', false, null],
      ],
    );
    assert.match(op.results[0].message, /step 1\.1\.0 failed: column "body" of relation "notes" already exists/);
  });

  test('a step that fails every canary in a way that looks like each tenant\'s own doing still stops the fleet: at most canarySize replacements', async () => {
    await provisionAll('dupcol', ['dup-a', 'dup-b', 'dup-c', 'dup-d', 'dup-e', 'dup-f']);
    const op = await runOperation('upgradeAllTenantSchemas', '{ template: "dupcol", targetVersion: "1.1.0", canarySize: 2, concurrency: 1 }');
    assert.equal(op.status, 'FAILED', JSON.stringify(op));
    // The two canaries, then two replacements: twice canarySize tried in all, then the stop.
    assert.match(op.error, /4 canaries failed, each for what looks like its own objects .*so many suggest the step itself/);
    assert.deepEqual(
      op.results.map((r: any) => [r.tenantSlug, r.status, r.canary, r.failureCause]),
      [
        ['dup-a', 'FAILED', true, 'TENANT'],
        ['dup-b', 'FAILED', true, 'TENANT'],
        ['dup-c', 'FAILED', true, 'TENANT'],
        ['dup-d', 'FAILED', true, 'TENANT'],
        ['dup-e', 'SKIPPED', false, null],
        ['dup-f', 'SKIPPED', false, null],
      ],
    );
  });

  test('by default, a tenant whose last result of the kind FAILED goes last, not first as the canary', async () => {
    // own-a still holds its own column: it fails again, the others go to 1.2.0.
    const op = await runOperation('upgradeAllTenantSchemas', '{ template: "owncol", canarySize: 1 }');
    assert.deepEqual(
      op.results.map((r: any) => [r.tenantSlug, r.position, r.status, r.canary]),
      [
        ['own-b', 0, 'SUCCEEDED', true],
        ['own-c', 1, 'SUCCEEDED', false],
        ['own-d', 2, 'SUCCEEDED', false],
        ['own-a', 3, 'FAILED', false],
      ],
    );
    assert.equal(op.status, 'COMPLETED_WITH_ERRORS');
  });

  test('the operator picks the canaries and leaves tenants out; bad picks are refused naming them', async () => {
    await provisionAll('picky', ['pick-a', 'pick-b', 'pick-c', 'pick-d']);
    for (const [input, field, message] of [
      ['{ template: "picky", exclude: ["pick-x"] }', 'exclude', /not among the tenants this operation would run on .*: pick-x/],
      ['{ template: "picky", canary: ["fleet-00"] }', 'canary', /not among the tenants .*: fleet-00/],
      ['{ template: "picky", canary: ["pick-a"], exclude: ["pick-a"] }', 'exclude', /both a canary and excluded: pick-a/],
      ['{ template: "picky", canary: ["pick-a", "pick-b"], canarySize: 1 }', 'canarySize', /canarySize 1 is smaller than the 2 canaries picked/],
    ] as const) {
      const r = await t.gql(`mutation { upgradeAllTenantSchemas(input: ${input}) { operation { id } userErrors { code field message } } }`);
      assert.equal(r.data.upgradeAllTenantSchemas.operation, null, input);
      assert.deepEqual(r.data.upgradeAllTenantSchemas.userErrors.map((e: any) => [e.code, e.field]), [['INVALID_INPUT', field]], input);
      assert.match(r.data.upgradeAllTenantSchemas.userErrors[0].message, message);
    }
    const op = await runOperation('upgradeAllTenantSchemas', '{ template: "picky", canary: ["pick-c"], exclude: ["pick-b"] }');
    assert.deepEqual([op.status, op.total, op.canarySize, op.pickedCanaries, op.excluded], ['SUCCEEDED', 3, 1, ['pick-c'], ['pick-b']]);
    assert.deepEqual(op.results.map((r: any) => [r.tenantSlug, r.canary]), [['pick-c', true], ['pick-a', false], ['pick-d', false]]);
    const b = await t.gql(`{ tenant(slug: "pick-b") { schemaVersion { version } } }`);
    assert.equal(b.data.tenant.schemaVersion.version, '1.0.0', 'the excluded tenant was not touched');
  });

  test('results are a page: 20 by default, more than GRAPHQL_MAX_PAGE_SIZE refused, paged on by position', async () => {
    const listed = await t.gql(`{ operations(first: 50) { edges { node { kind total results { position } more: results(first: 5, afterPosition: 17) { position } } } } }`);
    const big = listed.data.operations.edges.map((e: any) => e.node).find((o: any) => o.total === 20);
    assert.equal(big.results.length, 20);
    assert.deepEqual(big.more.map((r: any) => r.position), [18, 19]);
    const refused = await t.gql(`{ operations(first: 1) { edges { node { results(first: 101) { position } } } } }`);
    assert.equal(refused.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.match(refused.errors![0]!.message, /GRAPHQL_MAX_PAGE_SIZE/);
  });

  test('updateAllTenantExtensions runs updateTenantExtensions on every tenant', async () => {
    await downgradeTrgm(`${t.prefix}fleet_03`);
    // Operations decide from the records (a fleet at the target costs no connection): the
    // inventory sees the change made by hand first.
    await t.gql(`mutation { refreshTenant(input: { slug: "fleet-03" }) { userErrors { code } } }`);
    const started = await t.gql(`mutation { updateAllTenantExtensions(input: { concurrency: 8 }) { operation { id kind } } }`);
    const id = started.data.updateAllTenantExtensions.operation.id;
    const op = await until(
      async () => (await t.gql(`query($id: ID!) { node(id: $id) { ... on Operation { ${OPERATION} } } }`, { id })).data.node,
      (o: any) => o.finishedAt !== null,
      'the operation to finish',
    );
    assert.deepEqual([op.status, op.total, op.failed], ['SUCCEEDED', 20, 0]);
    assert.equal(op.results.find((r: any) => r.tenantSlug === 'fleet-03').message, 'updated pg_trgm 1.3 → 1.6');
  });

  test('operations are for admins', async () => {
    const key = (await t.gql(`mutation { createApiKey(input: { name: "r", role: TENANT_ADMIN, tenantSlug: "fleet-00" }) { key } }`)).data.createApiKey.key;
    const r = await t.gql(`mutation { upgradeAllTenantSchemas { operation { id } } }`, {}, key);
    assert.equal(r.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    const q = await t.gql(`{ operations(first: 1) { edges { node { id } } } }`, {}, key);
    assert.equal(q.errors?.[0]?.extensions?.code, 'FORBIDDEN');
  });
});

describe('a server killed during an operation', () => {
  test('leaves it RUNNING; the next server resumes it where it stopped and finishes it', async () => {
    const id = randomBytes(4).toString('hex');
    const controlDatabase = `tenantry_k${id}`;
    const prefix = `k${id}_`;
    const adminKey = generateApiKey();
    const serverUrl = testServerUrl();
    const admin = new pg.Pool({ connectionString: serverUrl, max: 2 });
    const children: ChildProcess[] = [];

    async function startServer(): Promise<{ child: ChildProcess; url: string }> {
      const port = await freePort();
      const env = {
        ...process.env,
        DATABASE_URL: controlPlaneUrl(),
        CONTROL_DATABASE: controlDatabase,
        TENANT_DB_PREFIX: prefix,
        ADMIN_API_KEY: adminKey,
        PORT: String(port),
        POOLER: 'none',
        TEMPLATES_DIR: dir,
        OPERATION_RESUME_INTERVAL_MS: '500',
        OVERCOMMIT_FACTOR: '50',
        QUOTA_MIN: '2',
        LOG_LEVEL: 'warn',
      };
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      await until(() => out.includes('Tenantry is ready') || child.exitCode !== null, Boolean, 'the server to start', 60_000);
      assert.ok(out.includes('Tenantry is ready'), out);
      return { child, url: `http://127.0.0.1:${port}` };
    }
    const gql = async (url: string, query: string, variables: Record<string, unknown> = {}) => {
      const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ query, variables }) });
      return ((await res.json()) as { data: any }).data;
    };

    try {
      const first = await startServer();
      const slugs = Array.from({ length: 8 }, (_, i) => `slow-${i}`);
      for (const slug of slugs) {
        const r = await gql(first.url, PROVISION, { input: { slug, displayName: slug, maxConnections: 3, template: 'slow', templateVersion: '1.0.0' } });
        assert.deepEqual(r.provisionTenant.userErrors, []);
      }
      const started = await gql(first.url, `mutation { upgradeAllTenantSchemas(input: { template: "slow", concurrency: 1, canarySize: 1 }) { operation { id } } }`);
      const opId = started.upgradeAllTenantSchemas.operation.id;
      const read = async (url: string) => (await gql(url, `query($id: ID!) { node(id: $id) { ... on Operation { ${OPERATION} } } }`, { id: opId })).node;
      await until(() => read(first.url), (o: any) => o.done >= 2, 'two tenants done', 60_000);

      first.child.kill('SIGKILL');
      await new Promise((r) => first.child.once('exit', r));
      const control = new pg.Client({ connectionString: withDatabase(serverUrl, controlDatabase) });
      await control.connect();
      const left = (await control.query(`SELECT status, done, total, started_at FROM operations`)).rows[0];
      await control.end();
      assert.equal(left.status, 'RUNNING');
      assert.ok(left.done >= 2 && left.done < left.total, `killed with ${left.done} of ${left.total} done`);

      const second = await startServer();
      const finished = await until(() => read(second.url), (o: any) => o.finishedAt !== null, 'the resumed operation to finish', 60_000);
      assert.deepEqual([finished.status, finished.total, finished.done, finished.failed], ['SUCCEEDED', 8, 8, 0]);
      assert.equal(Date.parse(finished.startedAt), left.started_at.getTime(), 'the same operation, resumed, not restarted');
      assert.ok(finished.results.every((r: any) => r.status === 'SUCCEEDED' && r.toVersion === '1.1.0'));
      for (const slug of slugs) {
        await inDatabase(`${prefix}${slug.replace('-', '_')}`, async (c) => {
          const version = await c.query(`SELECT "Version" FROM "__SchemaVersion"`);
          assert.equal(version.rows[0].Version, '1.1.0');
          const columns = await c.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' ORDER BY ordinal_position`);
          assert.deepEqual(columns.rows.map((r) => r.column_name), ['id', 'body']);
        });
      }
    } finally {
      const alive = children.filter((c) => c.exitCode === null && c.signalCode === null);
      const exited = alive.map((c) => new Promise((r) => c.once('exit', r)));
      for (const child of alive) child.kill('SIGTERM');
      await Promise.all(exited);
      await dropEverythingOf(admin, { controlDatabase, prefix });
      await admin.end();
    }
  });
});
