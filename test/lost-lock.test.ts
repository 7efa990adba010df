// @test-scope once: a lock session of the control database ending: the control plane owns that database on any server and with any privileges.
// Issue 14, item 5: the session that holds a mutation's tenant lock (application_name
// 'tenantry-locks' in the control database) ends mid-mutation. PostgreSQL lets go of the lock
// with it, so another mutation on the same tenant may run at once; the first must stop at its
// next step (TENANT_BUSY, retryable) rather than carry on beside it, and recovery finishes what
// it recorded.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { inDatabase, TestTemplates } from './support/templates.js';

let t: TestTenantry;
let templates: TestTemplates;

/** Every step a mutation reached, in order (Hooks.checkpoint), as `name`. */
const steps: string[] = [];
/** Where the first mutation is held, and how the test lets it go on. */
let holdAt: string | null = null;
let held: (() => void) | null = null;
let release: () => void = () => undefined;

before(async () => {
  templates = await TestTemplates.create();
  const plain = { description: 'step', tables: ['notes'], extensions: { required: [] } };
  await templates.add('twostep', '1.0.0', plain, 'CREATE TABLE notes (id int PRIMARY KEY);');
  await templates.add('twostep', '1.1.0', plain, 'ALTER TABLE notes ADD COLUMN title text;');
  await templates.add('twostep', '1.2.0', plain, 'ALTER TABLE notes ADD COLUMN body text;');
  t = await startTestTenantry({
    // Recovery runs when the test says so (it would otherwise repair the first change's leftovers at any moment).
    env: { TEMPLATES_DIR: templates.dir, RECOVERY_INTERVAL_MS: '0' },
    failpoints: { 'quota.*': checkpoint, 'upgrade.step:*': checkpoint },
  });
});
/** Every step boundary of a quota change or an upgrade: recorded, and held when the test asks. */
async function checkpoint({ point }: { point: string }): Promise<void> {
  steps.push(point);
  if (point !== holdAt) return;
  holdAt = null;
  const gate = new Promise<void>((resolve) => (release = resolve));
  held?.();
  await gate;
}

after(async () => {
  await t.cleanup();
  await templates.remove();
});

/** Holds the next mutation that reaches `step`; resolves once it is there. */
function holdNextAt(step: string): Promise<void> {
  holdAt = step;
  return new Promise((resolve) => (held = resolve));
}

/** Ends the control-database session that holds an advisory lock (the held mutation's), and waits until it is gone. */
async function endLockSession(): Promise<void> {
  const { rows } = await t.admin.query<{ pid: number }>(
    `SELECT a.pid FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_locks l ON l.pid = a.pid
     WHERE a.datname = $1 AND a.application_name = 'tenantry-locks' AND l.locktype = 'advisory' AND l.granted`,
    [t.controlDatabase],
  );
  assert.equal(rows.length, 1, 'exactly one lock session holds a lock: the held mutation\'s');
  const ended = await t.admin.query<{ ok: boolean }>('SELECT pg_catalog.pg_terminate_backend($1, 10000) AS ok', [rows[0]!.pid]);
  assert.equal(ended.rows[0]!.ok, true);
}

const QUOTA = `mutation($n: Int!) { updateTenantQuota(input: { slug: "lost", maxConnections: $n }) { quota { maxConnections } userErrors { code message } } }`;

describe('a mutation whose lock session ends', () => {
  test('a quota change stops at its next step; the one that took the lock meanwhile is what PostgreSQL and the records hold', async () => {
    const p = await t.gql(PROVISION, { input: { slug: 'lost', displayName: 'lost', maxConnections: 5, template: 'twostep', templateVersion: '1.0.0' } });
    assert.deepEqual(p.data.provisionTenant.userErrors, []);
    const role = p.data.provisionTenant.tenant.roleName;

    steps.length = 0;
    const reached = holdNextAt('quota.recorded');
    const first = t.gql(QUOTA, { n: 9 });
    await reached;
    await endLockSession();

    // The lock is free: a second change goes through while the first is held.
    const second = await t.gql(QUOTA, { n: 20 });
    assert.deepEqual(second.data.updateTenantQuota.userErrors, []);
    assert.deepEqual(steps, ['quota.recorded', 'quota.recorded', 'quota.applied']);

    release();
    const answer = (await first).data.updateTenantQuota;
    assert.equal(answer.userErrors.length, 1, JSON.stringify(answer));
    assert.equal(answer.userErrors[0].code, 'TENANT_BUSY');
    assert.match(answer.userErrors[0].message, /lost its lock on tenant .*: its session to the control database ended/);
    assert.match(answer.userErrors[0].message, /stopped at its next step.*completed by recovery/);
    assert.deepEqual(steps, ['quota.recorded', 'quota.recorded', 'quota.applied'], 'the first did nothing more once its lock was gone');

    // PostgreSQL has the second change's limit, not the first's stale one.
    const limit = await t.admin.query<{ n: number }>('SELECT rolconnlimit AS n FROM pg_catalog.pg_roles WHERE rolname = $1', [role]);
    assert.equal(limit.rows[0]!.n, 20);
    const recorded = await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'lost' }, include: { quota: true } });
    assert.equal(recorded.quota!.maxConnections, 20);
    // And nothing is left for recovery to disagree with.
    const report = await t.app.parts.recovery.run();
    assert.deepEqual(report.repaired.filter((r) => r.slug === 'lost'), []);
  });

  test('an upgrade stops before its next template step; the tenant stays at the last step it finished', async () => {
    steps.length = 0;
    const reached = holdNextAt('upgrade.step:1.2.0');
    const first = t.gql(`mutation { upgradeTenantSchema(input: { slug: "lost", targetVersion: "1.2.0" }) { toVersion userErrors { code message } } }`);
    await reached;
    await endLockSession();

    const second = await t.gql(QUOTA, { n: 21 });
    assert.deepEqual(second.data.updateTenantQuota.userErrors, []);
    release();
    const answer = (await first).data.upgradeTenantSchema;
    assert.deepEqual(answer.userErrors.map((e: { code: string }) => e.code), ['TENANT_BUSY'], JSON.stringify(answer));
    assert.match(answer.userErrors[0].message, /lost its lock/);
    assert.deepEqual(steps, ['upgrade.step:1.1.0', 'upgrade.step:1.2.0', 'quota.recorded', 'quota.applied']);

    const tenant = await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'lost' } });
    await inDatabase(tenant.databaseName, async (c) => {
      assert.equal((await c.query(`SELECT "Version" FROM "__SchemaVersion"`)).rows[0].Version, '1.1.0', 'step 1.2.0 never ran');
      const columns = await c.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' ORDER BY ordinal_position`);
      assert.deepEqual(columns.rows.map((r) => r.column_name), ['id', 'title']);
    });
    // Run again, the upgrade finishes.
    const again = await t.gql(`mutation { upgradeTenantSchema(input: { slug: "lost", targetVersion: "1.2.0" }) { toVersion userErrors { code } } }`);
    assert.deepEqual(again.data.upgradeTenantSchema, { toVersion: '1.2.0', userErrors: [] });
  });
});
