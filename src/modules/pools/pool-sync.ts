import { EventEmitter } from 'node:events';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsInOrder } from '../../platform/db/rows-in-order.js';
import type { DomainEvents } from '../../platform/domain-events.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import type { Logger } from '../../platform/logger.js';
import { PeriodicTask } from '../../platform/periodic-task.js';
import type { Pool, Prisma } from '../../generated/prisma/client.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { PgBouncerDriver } from './pgbouncer/pgbouncer-driver.js';
import type { PoolerStatus } from './pgbouncer/pgbouncer-process.js';
import type { PoolerAuth, Queryable } from './pgbouncer/pooler-auth.js';
import { comparePools, type PoolDrift } from './pool-drift.js';
import { desiredPools } from './pools.sql.js';
import { PoolerConfigError, PoolerFilesError, PoolerUnavailableError, type ObservedPool, type PoolMode, type PoolSpec } from './pooler-driver.js';

export type { Pool, PoolDrift };

export type SyncOutcome = 'IN_SYNC' | 'PENDING' | 'ERROR';

/** How an apply ended: IN_SYNC, PENDING (pooler unreachable, retried later) or ERROR (refused, files not writable, or the pooler is down). */
export interface SyncResult {
  outcome: SyncOutcome;
  error: string | null;
}

export interface ReconcileReport {
  pooler: 'pgbouncer' | 'none';
  reachable: boolean;
  found: PoolDrift;
  outcome: SyncOutcome;
  actions: string[];
  error: string | null;
}

/** The pooler Tenantry runs, as readiness sees it; `none` without one, `external` when Tenantry does not run it. */
export type PoolerHealth = Omit<PoolerStatus, 'state'> & { state: PoolerStatus['state'] | 'none' | 'external' };

export interface PoolSyncOptions {
  db: ControlClient;
  /** The pooler's driver; null without a pooler (POOLER=none): then every request is IN_SYNC at once. */
  driver: PgBouncerDriver | null;
  mode: PoolMode;
  logger: Logger;
  /** The pooler's process, when Tenantry runs it: a pooler known to be down makes every pool ERROR. */
  status?: () => PoolerStatus;
  /** auth_query set-up, and the cluster the pooler fronts (PgBouncer). */
  auth?: { auth: PoolerAuth; cluster: ClusterAdmin };
  /**
   * The service's domain events: 'pooler.writable' is published when whether the pooler's
   * configuration can be written changes (readiness follows it), and with `locks` a committed
   * change whose pool must follow ('tenant.changed' with `pool`) is applied.
   */
  events?: DomainEvents;
  /** The apply after a change outlives the request that made it: it runs outside the request's locks. */
  locks?: TenantLocks;
}

interface Desired {
  tenantId: string;
  spec: PoolSpec;
}

interface Failure extends SyncResult {
  outcome: 'PENDING' | 'ERROR';
  error: string;
  /** The whole pooler is down: every pool takes the failure, not only the changed ones. */
  everyPool: boolean;
  /**
   * What the pooler was shown to run after the failure (its files could not be written):
   * the pools it has are IN_SYNC, every other one takes the failure. Null: not known.
   */
  running: ObservedPool[] | null;
}

/** Whether the pooler's configuration could be written, as the last apply found. */
export interface ConfigWriteState {
  /** Null once a write succeeded; else why it failed (also each changed pool's lastError). */
  error: string | null;
  /** The errno code of the failure (EPERM, EACCES, EROFS, ENOSPC...). */
  code: string | null;
}

/** First retry of an apply whose files could not be written; doubles up to the cap (PoolSync.filesRetry). */
const FILES_RETRY_FIRST_MS = 1000;
const FILES_RETRY_MAX_MS = 30_000;

/** Above this many ids, a bulk status change is written with a condition instead of an id list. */
const ID_LIST_MAX = 200;

/**
 * Keeps the pooler's pools equal to the active tenants: one pool per tenant, sized to its
 * quota. Tenants and quotas in the control database are the truth; table `pools` records
 * what was applied and how it went. Every change goes through one queue: requests that
 * arrive while an apply runs are coalesced into the next one, which reads the desired
 * state when it starts, so a newer state is never overwritten by an older one. Each apply
 * renders the pooler's whole configuration once and writes only the rows that changed.
 */
export class PoolSync extends EventEmitter<{ configWrite: [ConfigWriteState]; configWriteFailed: [code: string] }> {
  private reconciler: PeriodicTask | undefined;
  /**
   * While the configuration cannot be written, applies again on its own (1 s, doubling up to
   * 30 s), so the pools are repaired soon after the folder is writable again, reconciler or not.
   */
  private readonly filesRetry: PeriodicTask;
  private filesRetryMs = FILES_RETRY_FIRST_MS;
  private filesRetryPending = false;
  /** Emitted as `configWrite` when it changes (readiness and metrics follow it); each failure also as `configWriteFailed`. */
  private writeState: ConfigWriteState = { error: null, code: null };
  private readonly lane = new OneAtATime();
  /** The next apply, queued and not yet started: every request meanwhile takes it. */
  private next: Promise<SyncResult> | undefined;
  private remainingRepairs = 0;
  /**
   * The pools the last record() wrote for, by tenant: the next one reads only the rows of
   * pools that changed since (and any not IN_SYNC), so a quota change reads one row whatever
   * the fleet. Null: read every row (at start, after a failure, and on every reconciliation,
   * which so also catches rows changed by hand).
   */
  private recorded: Map<string, PoolRow> | null = null;
  private readonly unsubscribe: () => void;
  /** Recorded pool rows read back by applies (a quota change reads its own row, not the fleet's). */
  readonly stats = { rowsRead: 0 };

  constructor(private readonly p: PoolSyncOptions) {
    super();
    this.filesRetry = new PeriodicTask({
      name: 'pooler configuration retry',
      intervalMs: () => this.nextFilesRetryMs(),
      run: async () => {
        this.filesRetryPending = false;
        if (this.writeState.error !== null) await this.request();
      },
      logger: p.logger,
    });
    // Started idle: it waits until an apply finds the files unwritable (nextFilesRetryMs).
    this.filesRetry.start();
    this.unsubscribe = this.followChanges();
  }

  get driver(): PgBouncerDriver | null {
    return this.p.driver;
  }

  /** Whether the last apply could write the pooler's configuration (readiness, metrics). */
  get configWrite(): ConfigWriteState {
    return this.writeState;
  }

  /** The recorded pool of each tenant, in the order of `ids` (null: none, e.g. POOLER=none or not ACTIVE). */
  async byTenantIds(ids: readonly string[]): Promise<(Pool | null)[]> {
    const rows = await this.p.db.pool.findMany({ where: { tenantId: { in: [...ids] } } });
    return rowsInOrder(ids, rows, (r) => r.tenantId);
  }

  byTenantId(tenantId: string): Promise<Pool | null> {
    return this.p.db.pool.findUnique({ where: { tenantId } });
  }

  /**
   * Asks for the pooler to follow the control database. Resolves once an apply that
   * started after this call has finished (so it includes every change committed before
   * it), with how it went. Never rejects: safe to fire and forget after a commit.
   */
  request(): Promise<SyncResult> {
    if (!this.driver) return Promise.resolve({ outcome: 'IN_SYNC', error: null });
    this.next ??= this.lane.run(() => {
      this.next = undefined; // started: later requests need the apply after this one
      return this.applyNow();
    });
    return this.next;
  }

  /** Resolves once no apply is queued or running (tests wait for it before measuring). */
  async idle(): Promise<void> {
    do await this.lane.idle();
    while (this.next);
  }

  /**
   * Before the pooler starts: writes its configuration with every pool, so it starts with
   * them (a start is not drift). A pool set that cannot be rendered falls back to none;
   * the first apply reports it.
   */
  async writeInitial(): Promise<void> {
    const driver = this.driver;
    if (!driver) return;
    await this.lane.run(async () => {
      const desired = await this.desired();
      try {
        await driver.writeFiles(desired.map((d) => d.spec));
      } catch (err) {
        if (!(err instanceof PoolerConfigError)) throw err;
        this.p.logger.error({ err }, 'the pools cannot be rendered; the pooler starts with none');
        await driver.writeFiles([]);
      }
    });
  }

  status(): PoolerHealth {
    if (this.p.status) return this.p.status();
    return { state: this.driver ? 'external' : 'none', since: new Date(0), restarts: 0, lastExit: null, pid: null };
  }

  /**
   * The one call a new tenant database needs (provisioning's ACCESS step): the lookup
   * function in it (normally copied from its template) and CONNECT for the pooler's auth
   * user. A no-op without PgBouncer, or on a cluster the pooler does not front.
   */
  async allowPoolerLogin(cluster: ClusterAdmin, database: string): Promise<void> {
    await this.authFor(cluster)?.allowLogin(cluster, database);
  }

  /** For template databases (TemplateDatabases.prepare): installs the lookup function through `client`, connected to the new template. */
  async installLookup(cluster: ClusterAdmin, client: Queryable): Promise<void> {
    await this.authFor(cluster)?.install(client);
  }

  private authFor(cluster: ClusterAdmin): PoolerAuth | undefined {
    return this.p.auth?.cluster.id === cluster.id ? this.p.auth.auth : undefined;
  }

  /** Compares the active tenants with what the pooler runs, repairs any drift, and says what it found and did. */
  async reconcile(): Promise<ReconcileReport> {
    const driver = this.driver;
    if (!driver) return { pooler: 'none', reachable: false, found: noDrift(), outcome: 'IN_SYNC', actions: [], error: null };
    return this.lane.run(() => this.reconcileNow(driver));
  }

  /** reconcilePools (the mutation): reconciles now and records it in the audit trail, with the caller's reason. */
  async reconcilePools(op: OperationContext, reason: string | null): Promise<ReconcileReport> {
    const report = await this.reconcile();
    await recordAuditEvent(this.p.db, op, {
      category: 'pool',
      action: 'pools.reconciled',
      metadata: { ...report.found, actions: report.actions, outcome: report.outcome, reason },
    });
    return report;
  }

  /**
   * The reconciler: reconciles now (the pooler catching up at start), then every
   * `intervalMs` in the background (0: only now), logging what it repaired. Its timer never
   * keeps the process alive.
   */
  startReconciler(intervalMs: number): void {
    if (!this.driver || this.reconciler) return;
    this.reconciler = new PeriodicTask({
      name: 'pool reconciliation',
      intervalMs,
      run: async () => {
        const report = await this.reconcile();
        if (report.actions.length || report.outcome !== 'IN_SYNC') this.p.logger.info({ report }, 'pools reconciled');
      },
      logger: this.p.logger,
    });
    this.reconciler.start();
  }

  /** Stops the timers and waits for the apply in flight. */
  async close(): Promise<void> {
    this.unsubscribe();
    await this.reconciler?.stop();
    await this.filesRetry.stop();
    await this.lane.idle();
  }

  /**
   * A committed change whose pool must follow ('tenant.changed' with `pool`): applied outside
   * the request's locks (it outlives the request), never failing the change; the publisher
   * waits for it at most POOL_APPLY_WAIT_MS (TenantChanges).
   */
  private followChanges(): () => void {
    const { events, locks, logger } = this.p;
    if (!events || !locks) return () => undefined;
    return events.subscribe('tenant.changed', async ({ tenantId, pool }) => {
      if (!pool) return;
      try {
        await locks.detached(() => this.request());
      } catch (err) {
        logger.warn({ err, tenantId }, 'pool update after a change failed; the reconciler retries');
      }
    });
  }

  private async reconcileNow(driver: PgBouncerDriver): Promise<ReconcileReport> {
    const pooler = driver.kind;
    this.recorded = null;
    const desired = await this.desired();
    await this.repairAccess(desired);
    let observed: ObservedPool[];
    try {
      observed = await driver.observe();
    } catch (err) {
      if (!(err instanceof PoolerUnavailableError)) throw err;
      const failure = this.failureFrom(err);
      await this.record(desired, failure);
      return { pooler, reachable: false, found: noDrift(), outcome: failure.outcome, actions: [], error: failure.error };
    }
    const found = comparePools(desired.map((d) => d.spec), observed);
    const drifted = notRunAsWanted(found);
    if (drifted.size > 0) {
      await this.p.db.pool.updateMany({ where: { name: { in: [...drifted] } }, data: { status: 'DRIFTED' } });
    }
    const unsettled = await this.p.db.pool.count({ where: { status: { not: 'IN_SYNC' } } });
    const recorded = unsettled > 0 ? -1 : await this.p.db.pool.count();
    const anyPending = unsettled > 0 || recorded !== desired.length;
    const actions = [
      ...found.missing.map((n) => `added pool ${n}`),
      ...found.mismatched.map((m) => `resized pool ${m.name}`),
      ...found.orphaned.map((n) => `removed orphan pool ${n}`),
    ];
    if (actions.length === 0 && !anyPending) return { pooler, reachable: true, found, outcome: 'IN_SYNC', actions, error: null };
    const { outcome, error } = await this.applyNow();
    return { pooler, reachable: outcome !== 'PENDING', found, outcome, actions: outcome === 'IN_SYNC' ? (actions.length ? actions : ['re-applied pending pools']) : [], error };
  }

  /** Reads the desired state, applies it, records what changed. Never throws. */
  private async applyNow(): Promise<SyncResult> {
    const driver = this.driver!;
    try {
      const desired = await this.desired();
      let failure: Failure | null = null;
      try {
        await driver.apply(desired.map((d) => d.spec));
        this.filesWritten(null);
      } catch (err) {
        if (!(err instanceof PoolerUnavailableError) && !(err instanceof PoolerConfigError) && !(err instanceof PoolerFilesError)) throw err;
        failure = this.failureFrom(err);
        this.p.logger.warn({ err, pooler: driver.kind, outcome: failure.outcome }, failure.everyPool ? 'pooler is down; pools are ERROR until it is back' : err instanceof PoolerUnavailableError ? 'pooler unreachable; changed pools stay PENDING' : err instanceof PoolerFilesError ? 'the pooler\'s configuration cannot be written; pools it does not run are ERROR until it can' : 'pooler refused the configuration');
        // An unreachable pooler is found after the file was written; a refusal may come before any write.
        if (err instanceof PoolerFilesError) this.filesWritten(err);
        else if (err instanceof PoolerUnavailableError) this.filesWritten(null);
      }
      await this.record(desired, failure);
      return failure ? { outcome: failure.outcome, error: failure.error } : { outcome: 'IN_SYNC', error: null };
    } catch (err) {
      this.p.logger.error({ err }, 'pool sync failed');
      return { outcome: 'ERROR', error: (err as Error).message.slice(0, 500) };
    }
  }

  private failureFrom(err: Error): Failure {
    const status = this.p.status?.();
    // Down (and being restarted): every pool, whether or not the file could be written too.
    const unanswered = err instanceof PoolerUnavailableError || (err instanceof PoolerFilesError && err.running === null);
    if (unanswered && status && status.state !== 'up' && status.state !== 'stopped') {
      const why = `PgBouncer is down (${status.lastExit ?? 'not running'}); Tenantry is restarting it${err instanceof PoolerFilesError ? `; and ${err.message}` : ''}`;
      return { outcome: 'ERROR', error: why.slice(0, 500), everyPool: true, running: null };
    }
    const outcome = err instanceof PoolerUnavailableError ? 'PENDING' : 'ERROR';
    const running = err instanceof PoolerFilesError ? err.running : null;
    return { outcome, error: err.message.slice(0, 500), everyPool: false, running };
  }

  /**
   * Records whether the configuration could be written; tells listeners when that changes.
   * While it cannot, the apply is retried on its own (filesRetry).
   */
  private filesWritten(failure: PoolerFilesError | null): void {
    const next: ConfigWriteState = failure ? { error: failure.message.slice(0, 500), code: failure.code } : { error: null, code: null };
    const changed = next.error !== this.writeState.error || next.code !== this.writeState.code;
    this.writeState = next;
    if (failure) {
      this.emit('configWriteFailed', failure.code);
      // A retry already waiting keeps its time (and its delay does not double).
      if (!this.filesRetryPending) this.filesRetry.reschedule();
    } else {
      this.filesRetryMs = FILES_RETRY_FIRST_MS;
      this.filesRetry.reschedule();
    }
    if (!changed) return;
    this.emit('configWrite', next);
    void this.p.events?.publish('pooler.writable', { writable: next.error === null });
  }

  private nextFilesRetryMs(): number {
    if (this.writeState.error === null) {
      this.filesRetryPending = false;
      return 0;
    }
    const delayMs = this.filesRetryMs;
    this.filesRetryMs = Math.min(FILES_RETRY_MAX_MS, delayMs * 2);
    this.filesRetryPending = true;
    return delayMs;
  }

  private async desired(): Promise<Desired[]> {
    const rows = await this.p.db.$queryRaw<{ tenant_id: string; database_name: string; role_name: string; max_connections: number }[]>(desiredPools);
    return rows.map((r) => {
      const quota = Number(r.max_connections);
      const spec: PoolSpec = { name: r.database_name, database: r.database_name, user: r.role_name, poolSize: quota, maxDbConnections: quota, mode: this.p.mode };
      return { tenantId: r.tenant_id, spec };
    });
  }

  /**
   * Writes only what differs from the recorded rows: new pools, resized pools, pools
   * whose status changes, and deletes for tenants no longer active. Unchanged pools cost
   * nothing, so a quota change writes one row whatever the fleet.
   */
  private async record(desired: Desired[], failure: Failure | null): Promise<void> {
    const previous = this.recorded;
    this.recorded = null; // until this record() has written
    const changed = previous ? changedSince(previous, desired) : null;
    const read = await this.p.db.pool.findMany({
      where: changed ? { OR: [{ tenantId: { in: [...changed] } }, { status: { not: 'IN_SYNC' } }] } : undefined,
      select: { tenantId: true, name: true, mode: true, poolSize: true, maxConnections: true, status: true, lastError: true },
    });
    const rows = new Map(read.map((r) => [r.tenantId, r]));
    this.stats.rowsRead += rows.size;
    const now = new Date();
    const inSync: PoolState = { status: 'IN_SYNC', lastError: null, lastSyncedAt: now };
    const failed: PoolState | null = failure && { status: failure.outcome, lastError: failure.error };
    // After a failure that left the pooler answering, a pool is IN_SYNC only if it was shown to run it.
    const unshown = failure?.running ? notRunAsWanted(comparePools(desired.map((d) => d.spec), failure.running)) : null;
    const stateOf = (spec: PoolSpec): PoolState => (failed && (!unshown || unshown.has(spec.name)) ? failed : inSync);
    const writes: Prisma.PrismaPromise<unknown>[] = [];
    const creates: Prisma.PoolCreateManyInput[] = [];
    const statusOnly = new Map<PoolState, string[]>();
    const setStatus = (state: PoolState, tenantId: string) => {
      const ids = statusOnly.get(state);
      if (ids) ids.push(tenantId);
      else statusOnly.set(state, [tenantId]);
    };
    for (const { tenantId, spec } of desired) {
      const row = rows.get(tenantId);
      rows.delete(tenantId);
      const data = poolRow(spec);
      if (!row && changed && !changed.has(tenantId)) {
        // Unchanged since the last record and IN_SYNC there (rows not IN_SYNC were read): only
        // a pooler that is down touches it.
        if (failure?.everyPool) setStatus(failed!, tenantId);
        continue;
      }
      const state = stateOf(spec);
      if (!row) {
        creates.push({ tenantId, ...data, ...state, updatedAt: now });
        continue;
      }
      if (!sameRow(row, data)) {
        writes.push(this.p.db.pool.update({ where: { tenantId }, data: { ...data, ...state, updatedAt: now } }));
        continue;
      }
      const already = row.status === state.status && row.lastError === state.lastError;
      // A failed apply leaves pools that were in sync alone (they still are), unless the pooler
      // is down, or was shown not to run them.
      const affected = !failure || failure.everyPool || unshown !== null || row.status !== 'IN_SYNC';
      if (affected && !already) setStatus(state, tenantId);
    }
    const gone = [...rows.keys()];
    if (gone.length > 0) writes.unshift(this.p.db.pool.deleteMany({ where: { tenantId: { in: gone } } }));
    if (creates.length > 0) writes.push(this.p.db.pool.createMany({ data: creates, skipDuplicates: true }));
    for (const [state, ids] of statusOnly) {
      // Many at once (the pooler went down, or came back): one statement by condition.
      const where: Prisma.PoolWhereInput =
        ids.length <= ID_LIST_MAX || unshown
          ? { tenantId: { in: ids } }
          : { NOT: { status: state.status, lastError: state.lastError }, ...(failure && !failure.everyPool ? { status: { not: 'IN_SYNC' } } : {}) };
      writes.push(this.p.db.pool.updateMany({ where, data: { ...state, updatedAt: now } }));
    }
    if (writes.length === 1) await writes[0];
    else if (writes.length > 1) await this.p.db.$transaction(writes);
    this.recorded = new Map(desired.map((d) => [d.tenantId, poolRow(d.spec)]));
  }

  /** Tenant databases made before auth_query (or while POOLER=none) get pooler access, a bounded number per pass. */
  private async repairAccess(desired: Desired[]): Promise<void> {
    const a = this.p.auth;
    if (!a) return;
    try {
      const left = await a.auth.repair(a.cluster, desired.map((d) => d.spec.database), this.p.logger);
      if (left > 0 || this.remainingRepairs > 0) this.p.logger.info({ left }, 'tenant databases still waiting for pooler access (the next reconciliation continues)');
      this.remainingRepairs = left;
    } catch (err) {
      this.p.logger.warn({ err }, 'could not check pooler access of tenant databases');
    }
  }
}

/** A pool's status as table `pools` records it (lastSyncedAt only when it is IN_SYNC). */
interface PoolState {
  status: 'IN_SYNC' | 'PENDING' | 'ERROR';
  lastError: string | null;
  lastSyncedAt?: Date;
}

const noDrift = (): PoolDrift => ({ missing: [], orphaned: [], mismatched: [] });

/** Names of the wanted pools the pooler does not run as wanted. */
function notRunAsWanted(drift: PoolDrift): Set<string> {
  return new Set([...drift.missing, ...drift.mismatched.map((m) => m.name)]);
}

/** What table `pools` records of a pool's configuration. */
type PoolRow = Pick<Prisma.PoolCreateManyInput, 'name' | 'mode' | 'poolSize' | 'maxConnections'>;

function poolRow(spec: PoolSpec): PoolRow {
  return { name: spec.name, mode: spec.mode, poolSize: spec.poolSize, maxConnections: spec.maxDbConnections };
}

function sameRow(a: PoolRow, b: PoolRow): boolean {
  return a.name === b.name && a.mode === b.mode && a.poolSize === b.poolSize && a.maxConnections === b.maxConnections;
}

/** Tenants whose pool is new, gone or different since `previous` (what the last record() wrote). */
function changedSince(previous: Map<string, PoolRow>, desired: Desired[]): Set<string> {
  const changed = new Set(previous.keys()); // gone, unless still desired
  for (const { tenantId, spec } of desired) {
    const before = previous.get(tenantId);
    if (before && sameRow(before, poolRow(spec))) changed.delete(tenantId);
    else changed.add(tenantId);
  }
  return changed;
}

/** Runs tasks one after another (each apply rewrites the same files); a failure does not stop the next. */
class OneAtATime {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves when the task in flight (if any) is done. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
