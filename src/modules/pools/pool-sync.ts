import { EventEmitter } from 'node:events';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { Prisma } from '../../generated/prisma/client.js';
import type { Logger } from '../../platform/logger.js';
import type { PoolerStatus } from './pgbouncer/pgbouncer-process.js';
import type { PoolerAuth, Queryable } from './pgbouncer/pooler-auth.js';
import { comparePools, type PoolDrift } from './pool-drift.js';
import { PoolerConfigError, PoolerFilesError, PoolerUnavailableError, type ObservedPool, type PoolerDriver, type PoolMode, type PoolSpec } from './pooler-driver.js';
import { OneAtATime } from './pooler-plumbing.js';

export type { PoolDrift };

export type SyncOutcome = 'IN_SYNC' | 'PENDING' | 'ERROR';

/** How an apply ended: IN_SYNC, PENDING (pooler unreachable, retried later) or ERROR (refused, files not writable, or the pooler is down). */
export interface SyncResult {
  outcome: SyncOutcome;
  error: string | null;
}

export interface ReconcileReport {
  pooler: string;
  /** Whether the pooler answered. */
  reachable: boolean;
  found: PoolDrift;
  outcome: SyncOutcome;
  actions: string[];
  error: string | null;
}

/** The pooler Tenantry runs, as readiness sees it; `none` without one, `external` when Tenantry does not run it. */
export type PoolerHealth = Omit<PoolerStatus, 'state'> & { state: PoolerStatus['state'] | 'none' | 'external' };

export interface PoolSyncOptions {
  /** The pooler's process, when Tenantry runs it: a pooler known to be down makes every pool ERROR. */
  status?: () => PoolerStatus;
  /** auth_query set-up, and the cluster the pooler fronts (PgBouncer). */
  auth?: { auth: PoolerAuth; cluster: ClusterAdmin };
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

/** First retry of an apply whose files could not be written; doubles up to the cap. */
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
  private timer: NodeJS.Timeout | undefined;
  private filesRetry: { timer: NodeJS.Timeout | undefined; delayMs: number } = { timer: undefined, delayMs: FILES_RETRY_FIRST_MS };
  private closed = false;
  /** Emitted as `configWrite` when it changes (readiness and metrics follow it); each failure also as `configWriteFailed`. */
  private writeState: ConfigWriteState = { error: null, code: null };
  private readonly lane = new OneAtATime();
  /** Callers waiting for the next apply (one not yet started). */
  private waiting: ((r: SyncResult) => void)[] = [];
  private remainingRepairs = 0;
  /**
   * The pools the last record() wrote for, by tenant: the next one reads only the rows of
   * pools that changed since (and any not IN_SYNC), so a quota change reads one row whatever
   * the fleet. Null: read every row (at start, after a failure, and on every reconciliation,
   * which so also catches rows changed by hand).
   */
  private recorded: Map<string, PoolRow> | null = null;
  /** Recorded pool rows read back by applies (a quota change reads its own row, not the fleet's). */
  readonly stats = { rowsRead: 0 };

  constructor(
    private readonly db: ControlClient,
    readonly driver: PoolerDriver | null,
    private readonly mode: PoolMode,
    private readonly logger: Logger,
    private readonly options: PoolSyncOptions = {},
  ) {
    super();
  }

  /** Whether the last apply could write the pooler's configuration (readiness, metrics). */
  get configWrite(): ConfigWriteState {
    return this.writeState;
  }

  get enabled(): boolean {
    return this.driver !== null;
  }

  /** What the pool of a tenant with this quota should be. */
  specFor(tenant: { databaseName: string; roleName: string }, quota: number): PoolSpec {
    return { name: tenant.databaseName, database: tenant.databaseName, user: tenant.roleName, poolSize: quota, maxDbConnections: quota, mode: this.mode };
  }

  /** The pool of every active tenant, sized to its quota (one statement, whatever the fleet). */
  async desired(): Promise<Desired[]> {
    const rows = await this.db.$queryRaw<{ tenant_id: string; database_name: string; role_name: string; max_connections: number }[]>`
      SELECT t.id::text AS tenant_id, t.database_name, t.role_name, q.max_connections
        FROM tenants t JOIN quotas q ON q.tenant_id = t.id
       WHERE t.status = 'ACTIVE'
       ORDER BY t.database_name`;
    return rows.map((r) => ({ tenantId: r.tenant_id, spec: this.specFor({ databaseName: r.database_name, roleName: r.role_name }, Number(r.max_connections)) }));
  }

  /**
   * Asks for the pooler to follow the control database. Resolves once an apply that
   * started after this call has finished (so it includes every change committed before
   * it), with how it went. Never rejects: safe to fire and forget after a commit.
   */
  request(): Promise<SyncResult> {
    if (!this.driver) return Promise.resolve({ outcome: 'IN_SYNC', error: null });
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (this.waiting.length > 1) return; // the apply already queued takes this request too
      void this.lane.run(async () => {
        const batch = this.waiting.splice(0);
        const result = await this.applyNow();
        for (const done of batch) done(result);
      });
    });
  }

  /** Resolves once no apply is queued or running (tests wait for it before measuring). */
  async idle(): Promise<void> {
    do await this.lane.idle();
    while (this.waiting.length > 0);
  }

  /** The former name of request(), kept for callers that await the outcome. */
  sync(): Promise<SyncResult> {
    return this.request();
  }

  /**
   * Before the pooler starts: writes its configuration with every pool, so it starts with
   * them (a start is not drift). A pool set that cannot be rendered falls back to none;
   * the first apply reports it.
   */
  async writeInitial(): Promise<void> {
    const driver = this.driver;
    if (!driver?.writeFiles) return;
    await this.lane.run(async () => {
      const desired = await this.desired();
      try {
        await driver.writeFiles!(desired.map((d) => d.spec));
      } catch (err) {
        if (!(err instanceof PoolerConfigError)) throw err;
        this.logger.error({ err }, 'the pools cannot be rendered; the pooler starts with none');
        await driver.writeFiles!([]);
      }
    });
  }

  /** The pooler's state for readiness. */
  status(): PoolerHealth {
    if (this.options.status) return this.options.status();
    return { state: this.driver ? 'external' : 'none', since: new Date(0), restarts: 0, lastExit: null, pid: null };
  }

  /**
   * The one call a new tenant database needs (provisioning's ACCESS step): the lookup
   * function in it (normally copied from its template) and CONNECT for the pooler's auth
   * user. A no-op without PgBouncer, or on a cluster the pooler does not front.
   */
  async allowPoolerLogin(cluster: ClusterAdmin, database: string): Promise<void> {
    const a = this.options.auth;
    if (!a || a.cluster.id !== cluster.id) return;
    await a.auth.allowLogin(cluster, database);
  }

  /** For template databases (TemplateDatabases.prepare): installs the lookup function through `client`, connected to the new template. */
  async installLookup(cluster: ClusterAdmin, client: Queryable): Promise<void> {
    const a = this.options.auth;
    if (!a || a.cluster.id !== cluster.id) return;
    await a.auth.install(client);
  }

  /** Compares the active tenants with what the pooler runs, repairs any drift, and says what it found and did. */
  async reconcile(): Promise<ReconcileReport> {
    const pooler = this.driver?.kind ?? 'none';
    const found: PoolDrift = { missing: [], orphaned: [], mismatched: [] };
    if (!this.driver) return { pooler, reachable: false, found, outcome: 'IN_SYNC', actions: [], error: null };
    return this.lane.run(() => this.reconcileNow(this.driver!, pooler, found));
  }

  /** Reconciles every `intervalMs` in the background (the timer never keeps the process alive). */
  startTimer(intervalMs: number, onReport: (r: ReconcileReport) => void): void {
    if (!this.driver || intervalMs <= 0) return;
    let running = false;
    this.timer = setInterval(() => {
      if (running) return;
      running = true;
      this.reconcile()
        .then(onReport, (err) => this.logger.error({ err }, 'pool reconciliation failed'))
        .finally(() => (running = false));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the timers and waits for the apply in flight. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.filesRetry.timer);
    await this.lane.idle();
    await this.driver?.close();
  }

  private async reconcileNow(driver: PoolerDriver, pooler: string, found: PoolDrift): Promise<ReconcileReport> {
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
      return { pooler, reachable: false, found, outcome: failure.outcome, actions: [], error: failure.error };
    }
    Object.assign(found, comparePools(desired.map((d) => d.spec), observed));
    const drifted = new Set([...found.missing, ...found.mismatched.map((m) => m.name)]);
    if (drifted.size > 0) {
      await this.db.pool.updateMany({ where: { name: { in: [...drifted] } }, data: { status: 'DRIFTED' } });
    }
    const unsettled = await this.db.pool.count({ where: { status: { not: 'IN_SYNC' } } });
    const recorded = unsettled > 0 ? -1 : await this.db.pool.count();
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
        this.logger.warn({ err, pooler: driver.kind, outcome: failure.outcome }, failure.everyPool ? 'pooler is down; pools are ERROR until it is back' : err instanceof PoolerUnavailableError ? 'pooler unreachable; changed pools stay PENDING' : err instanceof PoolerFilesError ? 'the pooler\'s configuration cannot be written; pools it does not run are ERROR until it can' : 'pooler refused the configuration');
        // An unreachable pooler is found after the file was written; a refusal may come before any write.
        if (err instanceof PoolerFilesError) this.filesWritten(err);
        else if (err instanceof PoolerUnavailableError) this.filesWritten(null);
      }
      await this.record(desired, failure);
      return failure ? { outcome: failure.outcome, error: failure.error } : { outcome: 'IN_SYNC', error: null };
    } catch (err) {
      this.logger.error({ err }, 'pool sync failed');
      return { outcome: 'ERROR', error: (err as Error).message.slice(0, 500) };
    }
  }

  private failureFrom(err: Error): Failure {
    const status = this.options.status?.();
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
   * While it cannot, the apply is retried on its own (1 s, doubling up to 30 s), so the
   * pools are repaired soon after the folder is writable again, reconciler or not.
   */
  private filesWritten(failure: PoolerFilesError | null): void {
    const next: ConfigWriteState = failure ? { error: failure.message.slice(0, 500), code: failure.code } : { error: null, code: null };
    if (failure) {
      this.emit('configWriteFailed', failure.code);
      this.scheduleFilesRetry();
    } else {
      clearTimeout(this.filesRetry.timer);
      this.filesRetry = { timer: undefined, delayMs: FILES_RETRY_FIRST_MS };
    }
    if (next.error === this.writeState.error && next.code === this.writeState.code) return;
    this.writeState = next;
    this.emit('configWrite', next);
  }

  private scheduleFilesRetry(): void {
    if (this.closed || this.filesRetry.timer) return;
    const delayMs = this.filesRetry.delayMs;
    this.filesRetry.delayMs = Math.min(FILES_RETRY_MAX_MS, delayMs * 2);
    this.filesRetry.timer = setTimeout(() => {
      this.filesRetry.timer = undefined;
      void this.request();
    }, delayMs);
    this.filesRetry.timer.unref();
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
    const rows = new Map(
      (
        await this.db.pool.findMany({
          where: changed ? { OR: [{ tenantId: { in: [...changed] } }, { status: { not: 'IN_SYNC' } }] } : undefined,
          select: { tenantId: true, name: true, mode: true, poolSize: true, maxConnections: true, status: true, lastError: true },
        })
      ).map((r) => [r.tenantId, r]),
    );
    this.stats.rowsRead += rows.size;
    const now = new Date();
    const inSync: PoolState = { status: 'IN_SYNC', lastError: null, lastSyncedAt: now };
    const failed: PoolState | null = failure && { status: failure.outcome, lastError: failure.error };
    // After a failure that left the pooler answering, a pool is IN_SYNC only if it was shown to run it.
    const unshown = failure?.running ? notRunning(desired, failure.running) : null;
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
        writes.push(this.db.pool.update({ where: { tenantId }, data: { ...data, ...state, updatedAt: now } }));
        continue;
      }
      const already = row.status === state.status && row.lastError === state.lastError;
      // A failed apply leaves pools that were in sync alone (they still are), unless the pooler
      // is down, or was shown not to run them.
      const affected = !failure || failure.everyPool || unshown !== null || row.status !== 'IN_SYNC';
      if (affected && !already) setStatus(state, tenantId);
    }
    const gone = [...rows.keys()];
    if (gone.length > 0) writes.unshift(this.db.pool.deleteMany({ where: { tenantId: { in: gone } } }));
    if (creates.length > 0) writes.push(this.db.pool.createMany({ data: creates, skipDuplicates: true }));
    for (const [state, ids] of statusOnly) {
      // Many at once (the pooler went down, or came back): one statement by condition.
      const where: Prisma.PoolWhereInput =
        ids.length <= ID_LIST_MAX || unshown
          ? { tenantId: { in: ids } }
          : { NOT: { status: state.status, lastError: state.lastError }, ...(failure && !failure.everyPool ? { status: { not: 'IN_SYNC' } } : {}) };
      writes.push(this.db.pool.updateMany({ where, data: { ...state, updatedAt: now } }));
    }
    if (writes.length === 1) await writes[0];
    else if (writes.length > 1) await this.db.$transaction(writes);
    this.recorded = new Map(desired.map((d) => [d.tenantId, poolRow(d.spec)]));
  }

  /** Tenant databases made before auth_query (or while POOLER=none) get pooler access, a bounded number per pass. */
  private async repairAccess(desired: Desired[]): Promise<void> {
    const a = this.options.auth;
    if (!a) return;
    try {
      const left = await a.auth.repair(a.cluster, desired.map((d) => d.spec.database), this.logger);
      if (left > 0 || this.remainingRepairs > 0) this.logger.info({ left }, 'tenant databases still waiting for pooler access (the next reconciliation continues)');
      this.remainingRepairs = left;
    } catch (err) {
      this.logger.warn({ err }, 'could not check pooler access of tenant databases');
    }
  }
}

/** A pool's status as table `pools` records it (lastSyncedAt only when it is IN_SYNC). */
interface PoolState {
  status: 'IN_SYNC' | 'PENDING' | 'ERROR';
  lastError: string | null;
  lastSyncedAt?: Date;
}

/** Names of the desired pools the pooler does not run as wanted. */
function notRunning(desired: Desired[], running: readonly ObservedPool[]): Set<string> {
  const drift = comparePools(desired.map((d) => d.spec), running);
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
  const changed = new Set<string>();
  const now = new Set<string>();
  for (const { tenantId, spec } of desired) {
    now.add(tenantId);
    const before = previous.get(tenantId);
    if (!before || !sameRow(before, poolRow(spec))) changed.add(tenantId);
  }
  for (const tenantId of previous.keys()) if (!now.has(tenantId)) changed.add(tenantId);
  return changed;
}
