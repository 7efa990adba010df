// @test-slow: started first (scripts/run-tests.ts)
// Issue 9: a server killed (SIGKILL) at any point of a mutation leaves nothing half-done for
// long: the next server's recovery rolls provisioning forward (when the caller's credentials
// were kept for its idempotency key) or back, finishes deprovisioning and rotations, and
// repairs PostgreSQL's limits from the records. The caller can always obtain working
// credentials by repeating its call.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { connectAs, controlPlaneUrl, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { spawnReplica } from './support/replica.js';
import { until } from './support/subscriptions.js';
import type { RecoveryReport } from '../src/modules/provisioning/tenant-recovery.js';

let t: TestTenantry;
let replicaEnv: Record<string, string>;

before(async () => {
  t = await startTestTenantry({ env: { RECOVERY_INTERVAL_MS: '0' } });
  replicaEnv = {
    DATABASE_URL: controlPlaneUrl(),
    CONTROL_DATABASE: t.controlDatabase,
    TENANT_DB_PREFIX: t.prefix,
    ADMIN_API_KEY: t.adminKey,
    PORT: '0',
    POOLER: 'none',
    QUOTA_MIN: '2',
    OVERCOMMIT_FACTOR: '50',
    RECONCILE_INTERVAL_MS: '0',
    RECOVERY_INTERVAL_MS: '0',
    INVENTORY_INTERVAL_MS: '0',
    LOG_LEVEL: 'warn',
  };
});
after(async () => {
  await t.cleanup();
});

/** A request to a server that will be killed under it: resolves with whatever happened (an error, surely). */
function doomed(url: string, query: string, variables: Record<string, unknown>): Promise<unknown> {
  return fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${t.adminKey}` },
    body: JSON.stringify({ query, variables }),
  }).then(
    (r) => r.text(),
    (err: Error) => err,
  );
}

/** Databases and roles on the server with this test's prefix. */
async function onCluster(name: string): Promise<{ database: boolean; role: boolean; roleLimit: number | null; databaseLimit: number | null }> {
  const { rows } = await t.admin.query(
    `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS database, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS role,
            (SELECT rolconnlimit FROM pg_roles WHERE rolname = $1) AS role_limit, (SELECT datconnlimit FROM pg_database WHERE datname = $1) AS database_limit`,
    [name],
  );
  return { database: rows[0].database, role: rows[0].role, roleLimit: rows[0].role_limit, databaseLimit: rows[0].database_limit };
}

/**
 * Runs recovery until a pass reports what `done` looks for. The killed server's sessions (and
 * the tenant lock one of them held) end only as PostgreSQL notices the closed sockets; until
 * then a pass leaves the tenant for a later one, as the periodic pass would.
 */
async function recovered(done: (r: RecoveryReport) => boolean): Promise<RecoveryReport> {
  return until(() => t.app.parts.recovery.run(), done, 'a recovery pass to settle the killed call');
}

async function provisioned(slug: string, maxConnections = 5) {
  const r = (await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections } })).data.provisionTenant;
  assert.deepEqual(r.userErrors, []);
  return r;
}

const POINTS = ['before:ROLE', 'after:ROLE', 'after:TEMPLATE', 'after:DATABASE', 'after:ACCESS', 'after:SCHEMA_VERSION', 'after:CREDENTIALS'];

describe('SIGKILL during provisioning', () => {
  for (const point of POINTS) {
    test(`at ${point}: recovery leaves no orphan and no PROVISIONING tenant; the same call with the same key gets working credentials`, async () => {
      const slug = `crash-${point.replace(/[^a-z]/gi, '-').toLowerCase()}`;
      const name = `${t.prefix}${slug.replace(/[^a-z0-9]/g, '_')}`;
      const idempotencyKey = randomUUID();
      const input = { slug, displayName: slug, maxConnections: 4, idempotencyKey };
      const replica = await spawnReplica(replicaEnv, point);
      const answered = doomed(replica.url, PROVISION, { input });
      assert.equal(await replica.paused, point);
      await replica.kill('SIGKILL');
      await answered;

      const stuck = await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug } });
      assert.equal(stuck.status, 'PROVISIONING', 'the killed server left it half-way');
      const outcome = (await recovered((r) => r.provisioning.some((p) => p.slug === slug))).provisioning.find((p) => p.slug === slug)!.outcome;
      const row = await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug } });
      if (point === 'after:CREDENTIALS') {
        // Its password was set and kept for the caller's key: finished, not undone.
        assert.equal(outcome, 'completed');
        assert.equal(row.status, 'ACTIVE');
      } else {
        assert.equal(outcome, 'rolled back');
        assert.equal(row.status, 'FAILED');
        assert.deepEqual(await onCluster(name), { database: false, role: false, roleLimit: null, databaseLimit: null }, 'nothing left on the cluster');
      }

      // The caller, whose response was lost, repeats the same call.
      const again = (await t.gql(PROVISION, { input })).data.provisionTenant;
      assert.deepEqual(again.userErrors, []);
      assert.equal(again.tenant.status, 'ACTIVE');
      assert.ok(again.connectionString, 'the credentials are given again');
      const tenant = await connectAs(again.connectionString);
      try {
        assert.equal((await tenant.query('SELECT current_user AS u')).rows[0].u, name);
      } finally {
        await tenant.end();
      }
      assert.deepEqual(await onCluster(name), { database: true, role: true, roleLimit: 4, databaseLimit: 7 });
      // And once more: the same credentials, not new ones.
      const third = (await t.gql(PROVISION, { input })).data.provisionTenant;
      assert.equal(third.connectionString, again.connectionString);
    });
  }
});

describe('SIGKILL inside other mutations', () => {
  test('a quota change recorded but not yet in PostgreSQL: recovery applies the recorded quota, reported as drift', async () => {
    const p = await provisioned('quota-crash', 5);
    const replica = await spawnReplica(replicaEnv, 'quota.recorded');
    const answered = doomed(replica.url, `mutation { updateTenantQuota(input: { slug: "quota-crash", maxConnections: 9 }) { userErrors { code } } }`, {});
    assert.equal(await replica.paused, 'quota.recorded');
    await replica.kill('SIGKILL');
    await answered;
    const name = p.tenant.roleName;
    assert.equal((await onCluster(name)).roleLimit, 5, 'PostgreSQL still has the old limit');
    const row = await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'quota-crash' }, include: { quota: true } });
    assert.equal(row.quota!.maxConnections, 9, 'the control database has the new quota');

    await recovered((r) => r.repaired.some((x) => x.slug === 'quota-crash'));
    assert.deepEqual(await onCluster(name), { database: true, role: true, roleLimit: 9, databaseLimit: 12 });
    const audit = await t.gql(`{ auditEvents(first: 1, filter: { tenantSlug: "quota-crash", action: "tenant.drift.repaired" }) { edges { node { metadata } } } }`);
    assert.match(JSON.stringify(audit.data.auditEvents.edges[0].node.metadata), /role CONNECTION LIMIT is 5, recorded quota 9/);
    // Applying the recorded value again is not a no-op: a drifted limit is repaired by the mutation too.
    await t.admin.query(`ALTER ROLE "${name}" CONNECTION LIMIT 3`);
    await t.gql(`mutation { updateTenantQuota(input: { slug: "quota-crash", maxConnections: 9 }) { userErrors { code } } }`);
    assert.equal((await onCluster(name)).roleLimit, 9);
  });

  test('a rotation recorded but not applied: recovery applies it, and the same call with the same key returns the same working credentials', async () => {
    const p = await provisioned('rotate-crash');
    const before = (await t.admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [p.tenant.roleName])).rows[0].rolpassword;
    const idempotencyKey = randomUUID();
    const ROTATE = `mutation($key: String) { rotateTenantCredentials(input: { slug: "rotate-crash", idempotencyKey: $key }) { connectionString userErrors { code } } }`;
    const replica = await spawnReplica(replicaEnv, 'rotation.recorded');
    const answered = doomed(replica.url, ROTATE, { key: idempotencyKey });
    assert.equal(await replica.paused, 'rotation.recorded');
    await replica.kill('SIGKILL');
    await answered;

    const report = await recovered((r) => r.rotationsCompleted.length > 0);
    assert.deepEqual(report.rotationsCompleted, ['rotate-crash']);
    const now = (await t.admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [p.tenant.roleName])).rows[0].rolpassword;
    assert.notEqual(now, before, 'the recorded password is the role\'s now');

    const again = (await t.gql(ROTATE, { key: idempotencyKey })).data.rotateTenantCredentials;
    assert.deepEqual(again.userErrors, []);
    const tenant = await connectAs(again.connectionString);
    await tenant.end();
    const third = (await t.gql(ROTATE, { key: idempotencyKey })).data.rotateTenantCredentials;
    assert.equal(third.connectionString, again.connectionString, 'not rotated a second time');
    assert.equal((await t.admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [p.tenant.roleName])).rows[0].rolpassword, now);
  });

  test('a deprovisioning recorded but not done: recovery finishes it', async () => {
    const p = await provisioned('gone-crash');
    const replica = await spawnReplica(replicaEnv, 'deprovision.recorded');
    const answered = doomed(replica.url, `mutation { deprovisionTenant(input: { slug: "gone-crash", confirm: "gone-crash" }) { userErrors { code } } }`, {});
    assert.equal(await replica.paused, 'deprovision.recorded');
    await replica.kill('SIGKILL');
    await answered;
    assert.equal((await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'gone-crash' } })).status, 'DEPROVISIONING');

    const report = await recovered((r) => r.deprovisioned.length > 0);
    assert.deepEqual(report.deprovisioned, ['gone-crash']);
    assert.equal((await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'gone-crash' } })).status, 'DEPROVISIONED');
    assert.deepEqual(await onCluster(p.tenant.roleName), { database: false, role: false, roleLimit: null, databaseLimit: null });
  });

  test('afterwards: every database and role of this control plane belongs to a live tenant, and nothing is stuck', async () => {
    const tenants = await t.app.parts.db.tenant.findMany();
    assert.deepEqual(tenants.filter((x) => x.status === 'PROVISIONING' || x.status === 'DEPROVISIONING').map((x) => x.slug), []);
    const live = new Set(tenants.filter((x) => x.status === 'ACTIVE' || x.status === 'SUSPENDED').map((x) => x.databaseName));
    const { rows } = await t.admin.query(
      `SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1) UNION SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)`,
      [t.prefix],
    );
    assert.deepEqual(rows.map((r) => r.name).filter((n: string) => !live.has(n)), []);
  });
});
