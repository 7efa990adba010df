import { EventEmitter } from 'node:events';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsInOrder } from '../../platform/db/rows-in-order.js';
import type { DomainEvents } from '../../platform/domain-events.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import type { Logger } from '../../platform/logger.js';
import { PeriodicTask } from '../../platform/periodic-task.js';
import type { Pool, PoolStatus, Prisma } from '../../generated/prisma/client.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { PoolerStatus } from './pgbouncer/pgbouncer-process.js';
import { PoolerAuth, type Queryable } from './pgbouncer/pooler-auth.js';
import { comparePools, type PoolDrift } from './pool-drift.js';
import { desiredPools, desiredPoolsOf, recordedPools, updatePool, type DesiredPoolRow } from './pools.sql.js';
import { PoolerConfigError, PoolerFilesError, PoolerUnavailableError, type ObservedPool, type PoolerDriver, PoolerFailure, type PoolMode, type PoolSpec } from './pooler-driver.js';

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
  driver: PoolerDriver | null;
  mode: PoolMode;
  logger: Logger;
  /** The pooler's process, when Tenantry runs it: a pooler known to be down makes every pool ERROR. */
  status?: () => PoolerStatus;
  /**
   * auth_query set-up, and the default cluster (prepared before PgBouncer starts); every other
   * cluster is prepared by prepareCluster (at start, at registration, or at its first use).
   */
  auth?: { auth: PoolerAuth; cluster: ClusterAdmin };
  /**
   * The registered clusters: each tenant's pool points at its own cluster. Without it (tests
   * that run a pooler alone) every pool points at the server the pooler was started for.
   */
  clusters?: PoolClusters;
  /**
   * The service's domain events: 'pooler.writable' is published when whether the pooler's
   * configuration can be written changes (readiness follows it), and with `locks` a committed
   * change whose pool must follow ('tenant.changed' with `pool`) is applied.
   */
  events?: DomainEvents;
  /** The apply after a change outlives the request that made it: it runs outside the request's locks. */
  locks?: TenantLocks;
}

/** What pool sync needs of the cluster registry (ClusterRegistry has it). */
export interface PoolClusters {
  get(id: string): Promise<ClusterAdmin>;
  rows(): Promise<{ id: string; name: string }[]>;
}

/**
 * Something that sets a cluster up for Tenantry when it is registered (the registry runs each
 * one); PoolSync.clusterPreparer is the pooler's.
 */
export interface ClusterPreparer {
  name: string;
  prepare(cluster: ClusterAdmin): Promise<void>;
}

interface Desired {
  tenantId: string;
  clusterId: string;
  spec: PoolSpec;
  /** Being provisioned (it has its pool already; its ACCESS step grants the pooler's login). */
  provisioning: boolean;
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
  /** Null: the failure concerns every pool; else only those it names (one PgBouncer of several). */
  concerns: ((name: string) => boolean) | null;
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
   * What the last record() wrote, by tenant: the spec objects it recorded (an unchanged tenant
   * keeps its object). The next one reads only the rows of pools that changed since (and any not
   * IN_SYNC), so a quota change reads one row whatever the fleet. Null: read every row (at start,
   * after a failure, and on every reconciliation, which so also catches rows changed by hand).
   */
  private recorded: Map<string, PoolSpec> | null = null;
  private readonly unsubscribe: () => void;
  /**
   * Every active tenant's pool as last read, by tenant: an apply after a change reads the
   * changed tenants only and patches this. Null: the next apply reads every tenant (at
   * start, after a failure, and on every reconciliation).
   */
  private current: Map<string, Desired> | null = null;
  /**
   * The tenants the last desired() read again (null: it read every tenant). Every other tenant
   * kept its Desired object, so only these can differ from what the last record() wrote.
   */
  private patched: Set<string> | null = null;
  /** Tenants changed since the apply in flight started (read by the next one). */
  private dirty = new Set<string>();
  /** Whether the next apply reads every tenant (a request without tenant ids). */
  private readAll = true;
  /** host:port of each cluster, by id (one registry look-up per cluster, not per tenant); cleared when a cluster changes. */
  private readonly addresses = new Map<string, { host: string; port: number }>();
  /** Clusters where the lookup role and the auth user are in place (the default one from the start). */
  private readonly prepared = new Set<string>();
  /** prepareCluster calls in flight, by cluster id (concurrent callers share one). */
  private readonly preparing = new Map<string, Promise<void>>();
  /**
   * Recorded pool rows read back by applies (a quota change reads its own row, not the
   * fleet's), tenant rows read for the desired state (after a change: the changed ones), and
   * pools record() looked at (after a change: the changed ones and those not IN_SYNC).
   */
  readonly stats = { rowsRead: 0, tenantsRead: 0, poolsVisited: 0 };

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
    if (p.auth) this.prepared.add(p.auth.cluster.id);
    const unfollowTenants = this.followChanges();
    const unfollowClusters = this.followClusters();
    this.unsubscribe = () => {
      unfollowTenants();
      unfollowClusters();
    };
  }

  get driver(): PoolerDriver | null {
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
   * With `tenantIds`, only those tenants changed: the apply reads their rows and keeps
   * every other pool as it last read it (the reconciler reads them all).
   */
  request(tenantIds?: readonly string[]): Promise<SyncResult> {
    if (!this.driver) return Promise.resolve({ outcome: 'IN_SYNC', error: null });
    if (tenantIds) for (const id of tenantIds) this.dirty.add(id);
    else this.readAll = true;
    this.next ??= this.lane.run(() => {
      this.next = undefined; // started: later requests need the apply after this one
      const take: Reading = { all: this.readAll, tenantIds: this.dirty };
      this.readAll = false;
      this.dirty = new Set();
      return this.applyNow(take);
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
  async allowPoolerLogin(cluster: ClusterAdmin, database: string, inDatabase?: Queryable): Promise<void> {
    await (await this.authFor(cluster))?.allowLogin(cluster, database, inDatabase);
  }

  /** For template databases (TemplateDatabases.prepare): installs the lookup function through `client`, connected to the new template. */
  async installLookup(cluster: ClusterAdmin, client: Queryable): Promise<void> {
    await (await this.authFor(cluster))?.install(client);
  }

  /**
   * Makes a cluster ready for pooled logins: the lookup role and the auth user, with the same
   * password as on every other cluster (PgBouncer has one auth file). Idempotent; a control
   * plane without superuser gets a PoolerSetupError holding the SQL a superuser must run
   * once. A no-op without PgBouncer.
   */
  async prepareCluster(cluster: ClusterAdmin): Promise<void> {
    const a = this.p.auth;
    if (!a) return;
    let running = this.preparing.get(cluster.id);
    if (!running) {
      running = (async () => {
        await PoolerAuth.prepare(cluster, a.auth.roles, a.auth.password, this.p.logger);
        this.prepared.add(cluster.id);
      })().finally(() => this.preparing.delete(cluster.id));
      this.preparing.set(cluster.id, running);
    }
    await running;
  }

  /** The pooler's ClusterPreparer, for the cluster registry (registerCluster runs it). */
  get clusterPreparer(): ClusterPreparer {
    return { name: 'pooler', prepare: (cluster) => this.prepareCluster(cluster) };
  }

  /**
   * At start: prepares every registered cluster that answers, concurrently (a few statements
   * per cluster, none per tenant). One that does not is prepared at its first use, or by a
   * reconciliation once it is back (repairAccess). Never rejects.
   */
  prepareClusters(): Promise<void> {
    this.clustersPrepared = this.prepareEveryCluster();
    return this.clustersPrepared;
  }

  /** The last prepareClusters() pass (start-up runs it in the background; close() waits for it). */
  clustersPrepared: Promise<void> = Promise.resolve();

  private async prepareEveryCluster(): Promise<void> {
    const { clusters, auth, logger } = this.p;
    if (!clusters || !auth) return;
    let rows: { id: string; name: string }[];
    try {
      rows = (await clusters.rows()).filter((r) => !this.prepared.has(r.id));
    } catch (err) {
      logger.warn({ err }, 'could not list the clusters to prepare for pooled logins; each is prepared at its first use');
      return;
    }
    await Promise.all(
      rows.map(async (row) => {
        try {
          await this.prepareCluster(await clusters.get(row.id));
        } catch (err) {
          logger.warn({ err, cluster: row.name }, 'could not prepare a cluster for pooled logins; retried at its first use and by the reconciler');
        }
      }),
    );
  }

  private async authFor(cluster: ClusterAdmin): Promise<PoolerAuth | undefined> {
    const a = this.p.auth;
    if (!a) return undefined;
    if (!this.prepared.has(cluster.id)) await this.prepareCluster(cluster);
    return a.auth;
  }

  /**
   * Cutover of a tenant move, step 1: PgBouncer `PAUSE <db>`. Resolves once the pool holds no
   * server connection (its clients queue, none fail). Past `timeoutMs` it gives up: RESUME, and
   * throws. A no-op without a pooler.
   */
  async pauseTenantPool(databaseName: string, timeoutMs: number): Promise<void> {
    const driver = this.driver;
    if (!driver) return;
    await driver.pause(databaseName, timeoutMs);
    this.p.logger.info({ pool: databaseName }, 'pool paused for a cutover');
  }

  /**
   * Cutover, step 2 (after the mover committed tenants.cluster_id): applies now, so the tenant's
   * pool line points at its cluster from the control database, checks with SHOW DATABASES
   * that PgBouncer runs it so, and has PgBouncer close any server connection it still holds
   * (RECONNECT: to the old server). Throws when the pool does not point at the tenant's
   * cluster afterwards. A no-op without a pooler.
   */
  async repointTenantPool(tenantId: string): Promise<void> {
    const driver = this.driver;
    if (!driver) return;
    const result = await this.request([tenantId]);
    if (result.outcome !== 'IN_SYNC') throw new Error(`the tenant's pool could not be repointed (${result.outcome}): ${result.error}`);
    // What that apply read of the tenant (the row as committed by the mover), not a second read.
    const want = this.current?.get(tenantId);
    if (!want) throw new Error(`tenant ${tenantId} is not ACTIVE (or its cluster's address is unknown): it has no pool to repoint`);
    const got = await driver.observePool(want.spec.name);
    const at = want.spec.serverHost === undefined ? null : `${want.spec.serverHost}:${want.spec.serverPort}`;
    if (!got || (at && `${got.host}:${got.port}` !== at)) {
      throw new Error(`PgBouncer's pool ${want.spec.name} points at ${got ? `${got.host}:${got.port}` : 'nothing'}, not at ${at}`);
    }
    await driver.reconnect(want.spec.name);
    this.p.logger.info({ pool: want.spec.name, server: at }, 'pool repointed');
  }

  /**
   * Cutover, step 3: PgBouncer `RESUME <db>`. Idempotent (a pool that is not paused, or gone, is
   * done): recovery calls it after a restart of Tenantry, as PgBouncer stays paused if Tenantry
   * died mid-cutover. A no-op without a pooler.
   */
  async resumeTenantPool(databaseName: string): Promise<void> {
    const driver = this.driver;
    if (!driver) return;
    await driver.resume(databaseName);
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
    await this.clustersPrepared.catch(() => undefined);
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
        await locks.detached(() => this.request([tenantId]));
      } catch (err) {
        logger.warn({ err, tenantId }, 'pool update after a change failed; the reconciler retries');
      }
    });
  }

  private async reconcileNow(driver: PoolerDriver): Promise<ReconcileReport> {
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
    const unsettled = await this.p.db.pool.count({ where: { status: { in: UNSETTLED } } });
    const recorded = unsettled > 0 ? -1 : await this.p.db.pool.count();
    const anyPending = unsettled > 0 || recorded !== desired.length;
    const actions = [
      ...found.missing.map((n) => `added pool ${n}`),
      ...found.mismatched.map((m) => `resized pool ${m.name}`),
      ...found.orphaned.map((n) => `removed orphan pool ${n}`),
    ];
    if (actions.length === 0 && !anyPending) {
      // Every recorded row read once (catching rows changed by hand), so the applies after it
      // read only the rows of the pools they change, and reload only the PgBouncers they change.
      driver.shownRunning(desired.map((d) => d.spec));
      await this.record(desired, null);
      return { pooler, reachable: true, found, outcome: 'IN_SYNC', actions, error: null };
    }
    const { outcome, error } = await this.applyNow();
    return { pooler, reachable: outcome !== 'PENDING', found, outcome, actions: outcome === 'IN_SYNC' ? (actions.length ? actions : ['re-applied pending pools']) : [], error };
  }

  /** Reads the desired state, applies it, records what changed. Never throws. */
  private async applyNow(reading: Reading = { all: true, tenantIds: new Set() }): Promise<SyncResult> {
    const driver = this.driver!;
    try {
      const desired = await this.desired(reading);
      // The recorded rows the record needs are read while PgBouncer reloads (only this lane writes them).
      const recorded = this.readRecorded(desired);
      recorded.catch(() => undefined); // awaited by record(); a failed apply must not leave it unhandled
      let failure: Failure | null = null;
      try {
        // After a change, PgBouncer's log is the check (SHOW DATABASES grows with the fleet);
        // an apply that read every tenant, and every reconciliation, compares every pool.
        await driver.apply(desired.map((d) => d.spec), { verify: reading.all ? 'all' : 'log' });
        this.filesWritten(null);
      } catch (err) {
        if (!(err instanceof PoolerFailure)) throw err;
        failure = this.failureFrom(err);
        this.p.logger.warn({ err, pooler: driver.kind, outcome: failure.outcome }, failure.everyPool ? 'pooler is down; pools are ERROR until it is back' : err instanceof PoolerUnavailableError ? 'pooler unreachable; changed pools stay PENDING' : err instanceof PoolerFilesError ? 'the pooler\'s configuration cannot be written; pools it does not run are ERROR until it can' : 'pooler refused the configuration');
        // An unreachable pooler is found after the file was written; a refusal may come before any write.
        if (err instanceof PoolerFilesError) this.filesWritten(err);
        else if (err instanceof PoolerUnavailableError) this.filesWritten(null);
      }
      await this.record(desired, failure, await recorded);
      return failure ? { outcome: failure.outcome, error: failure.error } : { outcome: 'IN_SYNC', error: null };
    } catch (err) {
      this.p.logger.error({ err }, 'pool sync failed');
      this.current = null; // read everything again next time
      return { outcome: 'ERROR', error: (err as Error).message.slice(0, 500) };
    }
  }

  private failureFrom(err: PoolerFailure): Failure {
    // One PgBouncer of several failed: its own state, and only its pools take the failure.
    const status = err.scope ? err.scope.process : this.p.status?.();
    const concerns = err.scope?.concerns ?? null;
    // Down (and being restarted): every pool, whether or not the file could be written too.
    const unanswered = err instanceof PoolerUnavailableError || (err instanceof PoolerFilesError && err.running === null);
    if (unanswered && status && status.state !== 'up' && status.state !== 'stopped') {
      const why = `PgBouncer is down (${status.lastExit ?? 'not running'}); Tenantry is restarting it${err instanceof PoolerFilesError ? `; and ${err.message}` : ''}`;
      return { outcome: 'ERROR', error: (concerns ? `${err.scope!.label}: ${why}` : why).slice(0, 500), everyPool: true, running: null, concerns };
    }
    const outcome = err instanceof PoolerUnavailableError ? 'PENDING' : 'ERROR';
    const running = err instanceof PoolerFilesError ? err.running : null;
    return { outcome, error: err.message.slice(0, 500), everyPool: false, running, concerns };
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

  /**
   * The pools wanted: every active tenant's when `reading.all` (or nothing was read yet), else
   * the last reading patched with the rows of the changed tenants only.
   */
  private async desired(reading: Reading = { all: true, tenantIds: new Set() }): Promise<Desired[]> {
    if (reading.all || !this.current) {
      this.patched = null;
      const rows = await this.p.db.$queryRaw<DesiredPoolRow[]>(desiredPools);
      this.stats.tenantsRead += rows.length;
      const all = await this.toDesired(rows);
      this.current = new Map(all.map((d) => [d.tenantId, d]));
      return all;
    }
    this.patched = reading.tenantIds;
    if (reading.tenantIds.size > 0) {
      const rows = await this.p.db.$queryRaw<DesiredPoolRow[]>(desiredPoolsOf([...reading.tenantIds]));
      this.stats.tenantsRead += rows.length;
      const fresh = await this.toDesired(rows);
      for (const id of reading.tenantIds) this.current.delete(id);
      for (const d of fresh) this.current.set(d.tenantId, d);
    }
    return [...this.current.values()];
  }

  /**
   * Pool specs from tenant rows, each pointing at its tenant's cluster. A tenant whose cluster's
   * address cannot be had (its URL's environment variable unset) is left out, with a warning:
   * its pool would otherwise point at the wrong server.
   */
  private async toDesired(rows: DesiredPoolRow[]): Promise<Desired[]> {
    const unknown = new Set<string>();
    for (const r of rows) if (!this.addresses.has(r.cluster_id)) unknown.add(r.cluster_id);
    const missing = new Set<string>();
    if (this.p.clusters) {
      for (const id of unknown) {
        try {
          const c = await this.p.clusters.get(id);
          this.addresses.set(id, { host: c.host, port: c.port });
        } catch (err) {
          missing.add(id);
          this.p.logger.warn({ err, clusterId: id }, 'a cluster\'s address is unknown: its tenants have no pool until it is');
        }
      }
    }
    const out: Desired[] = [];
    for (const r of rows) {
      if (missing.has(r.cluster_id)) continue;
      const quota = Number(r.max_connections);
      const at = this.addresses.get(r.cluster_id);
      const spec: PoolSpec = { name: r.database_name, database: r.database_name, user: r.role_name, poolSize: quota, maxDbConnections: quota, mode: this.p.mode };
      if (at) {
        spec.serverHost = at.host;
        spec.serverPort = at.port;
      }
      out.push({ tenantId: r.tenant_id, clusterId: r.cluster_id, spec, provisioning: r.provisioning });
    }
    return out;
  }

  /** A cluster registered, changed (its URL may have) or removed: its address is read again, and the pools follow. */
  private followClusters(): () => void {
    const { events, locks, logger } = this.p;
    if (!events) return () => undefined;
    return events.subscribe('cluster.changed', async ({ clusterId, removed }) => {
      this.addresses.delete(clusterId);
      if (removed) this.prepared.delete(clusterId);
      if (!this.driver) return;
      try {
        await (locks ? locks.detached(() => this.request()) : this.request());
      } catch (err) {
        logger.warn({ err, clusterId }, 'pool update after a cluster change failed; the reconciler retries');
      }
    });
  }

  /**
   * Writes only what differs from the recorded rows: new pools, resized pools, pools
   * whose status changes, and deletes for tenants no longer active. Unchanged pools cost
   * nothing, so a quota change writes one row whatever the fleet.
   */
  private async record(desired: Desired[], failure: Failure | null, reading?: RecordedRows): Promise<void> {
    const { changed, rows } = reading ?? (await this.readRecorded(desired));
    const previous = this.recorded;
    this.recorded = null; // until this record() has written
    // After a change, with nothing failed: only the changed pools and the rows read (changed, or
    // not IN_SYNC) can need a write, so only they are visited, whatever the fleet.
    const current = this.current;
    const patched = this.patched;
    const onlyChanged = changed !== null && failure === null && previous !== null && patched !== null && current !== null;
    const visited: Desired[] = [];
    if (onlyChanged) {
      for (const id of new Set([...changed, ...rows.keys()])) {
        const d = current.get(id);
        if (d) visited.push(d);
      }
    }
    const now = new Date();
    const inSync: PoolState = { status: 'IN_SYNC', lastError: null, lastSyncedAt: now };
    const failed: PoolState | null = failure && { status: failure.outcome, lastError: failure.error };
    // After a failure that left the pooler answering, a pool is IN_SYNC only if it was shown to run it.
    const unshown = failure?.running ? notRunAsWanted(comparePools(desired.map((d) => d.spec), failure.running)) : null;
    const concerned = (spec: PoolSpec) => !failure?.concerns || failure.concerns(spec.name);
    const stateOf = (spec: PoolSpec): PoolState => (failed && concerned(spec) && (!unshown || unshown.has(spec.name)) ? failed : inSync);
    const writes: Prisma.PrismaPromise<unknown>[] = [];
    const creates: Prisma.PoolCreateManyInput[] = [];
    const statusOnly = new Map<PoolState, string[]>();
    const setStatus = (state: PoolState, tenantId: string) => {
      const ids = statusOnly.get(state);
      if (ids) ids.push(tenantId);
      else statusOnly.set(state, [tenantId]);
    };
    for (const { tenantId, spec } of onlyChanged ? visited : desired) {
      this.stats.poolsVisited++;
      const row = rows.get(tenantId);
      rows.delete(tenantId);
      if (!row && changed && !changed.has(tenantId)) {
        // Unchanged since the last record and IN_SYNC there (rows not IN_SYNC were read): only
        // a pooler that is down touches it.
        if (failure?.everyPool && concerned(spec)) setStatus(failed!, tenantId);
        continue;
      }
      const data = poolRow(spec);
      const state = stateOf(spec);
      if (!row) {
        creates.push({ tenantId, ...data, ...state, updatedAt: now });
        continue;
      }
      if (!sameRow(row, data)) {
        writes.push(this.p.db.$executeRaw(updatePool(tenantId, data, { status: state.status, lastError: state.lastError, syncedAt: state.lastSyncedAt ?? null }, now)));
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
        ids.length <= ID_LIST_MAX || unshown || failure?.concerns
          ? { tenantId: { in: ids } }
          : { NOT: { status: state.status, lastError: state.lastError }, ...(failure && !failure.everyPool ? { status: { in: UNSETTLED } } : {}) };
      writes.push(this.p.db.pool.updateMany({ where, data: { ...state, updatedAt: now } }));
    }
    if (writes.length === 1) await writes[0];
    else if (writes.length > 1) await this.p.db.$transaction(writes);
    if (onlyChanged) {
      // What is recorded now: the last record's, with the tenants read again as they are now and
      // without those gone (every other tenant, visited or not, kept its spec object).
      for (const id of patched) {
        const d = current.get(id);
        if (d) previous.set(id, d.spec);
        else previous.delete(id);
      }
      this.recorded = previous;
    } else this.recorded = new Map(desired.map((d) => [d.tenantId, d.spec]));
  }

  /**
   * The recorded rows record() compares `desired` with: those of the pools changed since the last
   * record (and any not IN_SYNC), or every row when there was none.
   */
  private async readRecorded(desired: Desired[]): Promise<RecordedRows> {
    const changed = !this.recorded ? null : this.patched && this.current ? changedAmong(this.recorded, this.patched, this.current) : changedSince(this.recorded, desired);
    const read = await this.p.db.$queryRaw<RecordedRow[]>(recordedPools(changed && [...changed], UNSETTLED));
    this.stats.rowsRead += read.length;
    return { changed, rows: new Map(read.map((r) => [r.tenantId, r])) };
  }

  /** Tenant databases made before auth_query (or while POOLER=none) get pooler access, a bounded number per pass. */
  private async repairAccess(desired: Desired[]): Promise<void> {
    const a = this.p.auth;
    if (!a) return;
    // Per cluster: one catalog read each, whatever its tenants; a cluster not prepared yet
    // (unreachable at start) is prepared here once it answers.
    const byCluster = new Map<string, string[]>();
    for (const d of desired) {
      // A provisioning's ACCESS step grants it (racing it, a GRANT on the same database could fail the provisioning).
      if (d.provisioning) continue;
      const id = this.p.clusters ? d.clusterId : a.cluster.id;
      const list = byCluster.get(id);
      if (list) list.push(d.spec.database);
      else byCluster.set(id, [d.spec.database]);
    }
    let left = 0;
    for (const [clusterId, databases] of byCluster) {
      try {
        const cluster = clusterId === a.cluster.id ? a.cluster : await this.p.clusters!.get(clusterId);
        const auth = await this.authFor(cluster);
        left += (await auth?.repair(cluster, databases, this.p.logger)) ?? 0;
      } catch (err) {
        this.p.logger.warn({ err, clusterId }, 'could not check pooler access of tenant databases');
      }
    }
    if (left > 0 || this.remainingRepairs > 0) this.p.logger.info({ left }, 'tenant databases still waiting for pooler access (the next reconciliation continues)');
    this.remainingRepairs = left;
  }
}

/** What an apply reads: every tenant, or only these. */
interface Reading {
  all: boolean;
  tenantIds: Set<string>;
}

type RecordedRow = Pick<Pool, 'tenantId' | 'name' | 'mode' | 'poolSize' | 'maxConnections' | 'status' | 'lastError'>;

/** What readRecorded found: the tenants changed since the last record (null: all), and their recorded rows. */
interface RecordedRows {
  changed: Set<string> | null;
  rows: Map<string, RecordedRow>;
}

/** A pool's status as table `pools` records it (lastSyncedAt only when it is IN_SYNC). */
interface PoolState {
  status: 'IN_SYNC' | 'PENDING' | 'ERROR';
  lastError: string | null;
  lastSyncedAt?: Date;
}

/**
 * Every status but IN_SYNC, as a list: `status IN (...)` uses the index on pools(status), where
 * `status <> 'IN_SYNC'` reads every row (an apply after one change would scan the fleet).
 */
const UNSETTLED: PoolStatus[] = ['PENDING', 'DRIFTED', 'ERROR'];

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

/** Whether a pool's recorded spec (none: new) differs from the wanted one; the same object (a tenant not read again, the common case) costs no allocation. */
function differs(before: PoolSpec | undefined, spec: PoolSpec): boolean {
  return before !== spec && !(before && sameRow(poolRow(before), poolRow(spec)));
}

/**
 * changedSince for an apply that read only `ids` again: every other tenant kept its spec
 * object, so only these are compared (a tenant among them no longer desired is gone).
 */
function changedAmong(previous: Map<string, PoolSpec>, ids: ReadonlySet<string>, current: Map<string, Desired>): Set<string> {
  const changed = new Set<string>();
  for (const id of ids) {
    const before = previous.get(id);
    const spec = current.get(id)?.spec;
    if (!spec) {
      if (before) changed.add(id);
    } else if (differs(before, spec)) changed.add(id);
  }
  return changed;
}

/** Tenants whose pool is new, gone or different since `previous` (what the last record() wrote). */
function changedSince(previous: Map<string, PoolSpec>, desired: Desired[]): Set<string> {
  const changed = new Set<string>();
  let added = 0;
  for (const { tenantId, spec } of desired) {
    const before = previous.get(tenantId);
    if (!before) added++;
    if (differs(before, spec)) changed.add(tenantId);
  }
  // Gone since: recorded, no longer desired (only looked for when some are).
  if (previous.size + added > desired.length) {
    const wanted = new Set(desired.map((d) => d.tenantId));
    for (const id of previous.keys()) if (!wanted.has(id)) changed.add(id);
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
