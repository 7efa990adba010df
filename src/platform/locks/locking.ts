import type { ClusterAdmin } from '../db/cluster-admin.js';
import { LOCK_NOT_AVAILABLE, sqlStateOf } from '../db/sql-state.js';
import { UserError } from '../errors.js';
import type { Failpoints } from '../failpoints.js';
import { LockLostError, LockPoolTimeoutError, LockTimeoutError, type AdvisoryLocks } from './advisory-locks.js';
import { capacityLock, tenantLock } from './lock-names.js';

/**
 * The domain's view of the control plane's locks (advisory-locks.ts has the order): waiting
 * too long is an answer the caller can act on (TENANT_BUSY, TIMEOUT), not a hang and not a
 * masked error. That holds for any lock the work waits for: ours, a row of the control
 * database, or an object in the tenant database that someone (the tenant, often) holds past
 * lock_timeout.
 */
export class TenantLocks {
  constructor(private readonly p: { locks: AdvisoryLocks; failpoints: Failpoints }) {}

  /**
   * Holds the tenant's lock (by database name, so two slugs with one name serialise, on any
   * cluster: see tenantLock) for `fn`.
   */
  underTenantLock<T>(tenant: { slug: string; databaseName: string }, fn: () => Promise<T>): Promise<T> {
    return asUserErrors(`tenant ${tenant.slug}`, () => this.p.locks.with(tenantLock(tenant.databaseName), fn));
  }

  /** Holds the cluster's capacity lock for `fn` (taken after, never before, a tenant lock). */
  underCapacityLock<T>(cluster: ClusterAdmin, fn: () => Promise<T>): Promise<T> {
    return asUserErrors(`the capacity of cluster ${cluster.name}`, () => this.p.locks.with(capacityLock(cluster.id), fn));
  }

  /** The tenant's lock if nobody holds it, else `{ busy: true }` at once (background passes skip busy tenants). */
  tryTenantLock<T>(tenant: { databaseName: string }, fn: () => Promise<T>): Promise<T | { busy: true }> {
    return this.p.locks.try(tenantLock(tenant.databaseName), fn);
  }

  /**
   * A step boundary of a change made under a tenant's lock: its failpoint (`name`), then proof
   * that the lock is still held. If its session ended, the change stops here with LockLostError
   * (TENANT_BUSY for the caller) instead of running on beside whoever holds the lock now;
   * recovery finishes what it recorded.
   */
  async nextStep(name: string, tenantSlug: string): Promise<void> {
    await this.p.failpoints.hit(name, { tenantSlug });
    await this.p.locks.assertHeld();
  }

  /** Runs `fn` (which may outlive the request) outside the current request's locks. */
  detached<T>(fn: () => T): T {
    return this.p.locks.detached(fn);
  }
}

async function asUserErrors<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof LockTimeoutError) {
      throw new UserError('TENANT_BUSY', `${what} is being changed by another request; try again in a moment`, 'slug');
    }
    if (err instanceof LockLostError) {
      throw new UserError(
        'TENANT_BUSY',
        `${err.message}. The change to ${what} stopped at its next step, so it never runs beside another; what it recorded is completed by recovery. Try again in a moment`,
        'slug',
      );
    }
    if (sqlStateOf(err) === LOCK_NOT_AVAILABLE) {
      throw new UserError('TENANT_BUSY', `${what}: a lock was not granted within LOCK_TIMEOUT_MS (${(err as Error).message}); something holds it, often the tenant's own sessions; try again in a moment`, 'slug');
    }
    if (err instanceof LockPoolTimeoutError) {
      throw new UserError('TIMEOUT', 'the control plane is busy (no connection came free in time); try again in a moment');
    }
    throw err;
  }
}
