// @test-scope once
// The control plane's advisory locks: work a request starts in the background (a timer, a look
// at the tenant "soon") never shares the request's lock session, neither while the request
// holds its locks nor after it let go and its connection went back to the pool.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { AdvisoryLocks, type LockName } from '../src/platform/locks/advisory-locks.js';
import { PROVISION, startTestTenantry, testServerUrl, type TestTenantry } from './support/test-tenantry.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const lockNamed = (): LockName => ({ kind: 'tenant', key: `test:${randomUUID()}`, label: 'test lock' });

describe('AdvisoryLocks', () => {
  let pool: pg.Pool;
  let locks: AdvisoryLocks;
  before(() => {
    // Two connections: the pool hands the most recently released one out first, so a request
    // that follows another gets its connection (the situation a reused session would break).
    pool = new pg.Pool({ connectionString: testServerUrl(), max: 2 });
    locks = new AdvisoryLocks(pool);
  });
  after(() => pool.end());

  test('a timer set by a request that has finished takes a session of its own: it finds the lock busy while the next request holds it', async () => {
    const lock = lockNamed();
    let late!: Promise<string | { busy: true }>;
    await locks.with(lock, async () => {
      late = new Promise((resolve) => setTimeout(() => resolve(locks.try(lock, async () => 'ran beside the holder')), 150));
    });
    await locks.with(lock, async () => {
      assert.deepEqual(await late, { busy: true });
    });
    assert.equal(await locks.try(lock, async () => 'free'), 'free', 'the lock is free once both let go');
  });

  test('a nested call shares the request\'s lock; work started `detached` waits its turn', async () => {
    const lock = lockNamed();
    await locks.with(lock, async () => {
      assert.equal(await locks.try(lock, async () => 'nested'), 'nested');
      assert.deepEqual(await locks.detached(() => locks.try(lock, async () => 'beside')), { busy: true });
      assert.deepEqual(locks.detached(() => locks.held()), []);
    });
  });
});

describe('the inventory asked to look at a tenant by a change that holds its lock', () => {
  let t: TestTenantry;
  before(async () => {
    t = await startTestTenantry();
  });
  after(() => t.cleanup());

  test('looks only after the change let go of the lock', async () => {
    const r = await t.gql(PROVISION, { input: { slug: 'watched', displayName: 'w' } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
    const { parts } = t.app;
    await parts.inventory.idle();
    const tenant = await parts.db.tenant.findUniqueOrThrow({ where: { slug: 'watched' } });
    let released = 0;
    await parts.locks.underTenantLock(tenant, async () => {
      parts.inventory.checkSoon(tenant.id);
      await sleep(400);
      released = Date.now();
    });
    await parts.inventory.idle();
    const checked = await parts.db.tenantInventory.findUniqueOrThrow({ where: { tenantId: tenant.id } });
    assert.ok(checked.checkedAt.getTime() >= released, `checked ${checked.checkedAt.toISOString()}, lock released ${new Date(released).toISOString()}`);
  });
});
