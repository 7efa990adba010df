import type { ControlClient } from '../../db/control-client.js';
import type { Logger } from '../../logger.js';
import { comparePools, type PoolDrift } from './pool-drift.js';
import { PoolerConfigError, PoolerUnavailableError, type ObservedPool, type PoolerDriver, type PoolMode, type PoolSpec } from './pooler-driver.js';

export type { PoolDrift };

export type SyncOutcome = 'IN_SYNC' | 'PENDING' | 'ERROR';

export interface ReconcileReport {
  pooler: string;
  /** Whether the pooler answered. */
  reachable: boolean;
  found: PoolDrift;
  outcome: SyncOutcome;
  actions: string[];
  error: string | null;
}

/**
 * Keeps the pooler's pools equal to the active tenants: one pool per tenant, sized to its
 * quota. The control database holds the wanted state (table `pools`); the pooler is told
 * the whole set every time, so a missed change is repaired by the next sync.
 */
export class PoolSync {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: ControlClient,
    readonly driver: PoolerDriver | null,
    private readonly mode: PoolMode,
    private readonly logger: Logger,
  ) {}

  get enabled(): boolean {
    return this.driver !== null;
  }

  /** What the pool of a tenant with this quota should be. */
  specFor(tenant: { databaseName: string; roleName: string }, quota: number): PoolSpec {
    return { name: tenant.databaseName, database: tenant.databaseName, user: tenant.roleName, poolSize: quota, maxDbConnections: quota, mode: this.mode };
  }

  /** The pool of every active tenant, sized to its quota: tenants and quotas are the truth. */
  async desired(): Promise<{ tenantId: string; spec: PoolSpec }[]> {
    const tenants = await this.db.tenant.findMany({ where: { status: 'ACTIVE' }, include: { quota: true }, orderBy: { databaseName: 'asc' } });
    return tenants.filter((t) => t.quota).map((t) => ({ tenantId: t.id, spec: this.specFor(t, t.quota!.maxConnections) }));
  }

  /**
   * Applies the whole wanted set and records each pool's state in `pools`. Never throws
   * for the pooler's sake: an unreachable pooler leaves changed pools PENDING (the
   * reconciler retries), a refused configuration marks them ERROR; the outcome says which.
   */
  async sync(): Promise<{ outcome: SyncOutcome; error: string | null }> {
    if (!this.driver) return { outcome: 'IN_SYNC', error: null };
    const desired = await this.desired();
    let failure: { outcome: SyncOutcome; error: string } | null = null;
    try {
      await this.driver.apply(desired.map((d) => d.spec));
    } catch (err) {
      const unavailable = err instanceof PoolerUnavailableError;
      if (!unavailable && !(err instanceof PoolerConfigError)) throw err;
      this.logger.warn({ err, pooler: this.driver.kind }, unavailable ? 'pooler unreachable; pools stay PENDING' : 'pooler refused the configuration');
      failure = { outcome: unavailable ? 'PENDING' : 'ERROR', error: (err as Error).message.slice(0, 500) };
    }
    await this.record(desired, failure);
    return failure ?? { outcome: 'IN_SYNC', error: null };
  }

  /** After a sync: applied pools are IN_SYNC; on failure, pools that changed (or never synced) take the failure's status. */
  private async record(desired: { tenantId: string; spec: PoolSpec }[], failure: { outcome: SyncOutcome; error: string } | null): Promise<void> {
    const rows = new Map((await this.db.pool.findMany()).map((r) => [r.tenantId, r]));
    const now = new Date();
    await this.db.$transaction(async (tx) => {
      await tx.pool.deleteMany({ where: { tenantId: { notIn: desired.map((d) => d.tenantId) } } });
      for (const { tenantId, spec } of desired) {
        const row = rows.get(tenantId);
        const changed = !row || row.poolSize !== spec.poolSize || row.maxConnections !== spec.maxDbConnections || row.mode !== spec.mode || row.status !== 'IN_SYNC';
        if (failure && !changed) continue;
        const state = failure
          ? { status: failure.outcome as 'PENDING' | 'ERROR', lastError: failure.error }
          : { status: 'IN_SYNC' as const, lastError: null, lastSyncedAt: now };
        const data = { name: spec.name, mode: spec.mode, poolSize: spec.poolSize, maxConnections: spec.maxDbConnections, updatedAt: now, ...state };
        await tx.pool.upsert({ where: { tenantId }, create: { tenantId, ...data }, update: data });
      }
    });
  }

  /** Applies the wanted pools (the pooler rework makes this a coalescing queue); never throws for the pooler's sake. */
  async request(): Promise<{ outcome: SyncOutcome; error: string | null }> {
    return this.sync();
  }

  /** Compares the active tenants with what the pooler runs, repairs any drift, and says what it found and did. */
  async reconcile(): Promise<ReconcileReport> {
    const pooler = this.driver?.kind ?? 'none';
    const found: PoolDrift = { missing: [], orphaned: [], mismatched: [] };
    if (!this.driver) return { pooler, reachable: false, found, outcome: 'IN_SYNC', actions: [], error: null };
    const desired = await this.desired();
    let observed: ObservedPool[];
    try {
      observed = await this.driver.observe();
    } catch (err) {
      if (!(err instanceof PoolerUnavailableError)) throw err;
      await this.record(desired, { outcome: 'PENDING', error: err.message.slice(0, 500) });
      return { pooler, reachable: false, found, outcome: 'PENDING', actions: [], error: err.message };
    }
    Object.assign(found, comparePools(desired.map((d) => d.spec), observed));
    const drifted = new Set([...found.missing, ...found.mismatched.map((m) => m.name)]);
    if (drifted.size > 0) {
      await this.db.pool.updateMany({ where: { name: { in: [...drifted] } }, data: { status: 'DRIFTED' } });
    }
    const synced = await this.db.pool.findMany({ where: { status: 'IN_SYNC' }, select: { tenantId: true } });
    const anyPending = desired.some((d) => !synced.some((r) => r.tenantId === d.tenantId));
    const actions = [
      ...found.missing.map((n) => `added pool ${n}`),
      ...found.mismatched.map((m) => `resized pool ${m.name}`),
      ...found.orphaned.map((n) => `removed orphan pool ${n}`),
    ];
    if (actions.length === 0 && !anyPending) return { pooler, reachable: true, found, outcome: 'IN_SYNC', actions, error: null };
    const { outcome, error } = await this.sync();
    return { pooler, reachable: outcome !== 'PENDING', found, outcome, actions: outcome === 'IN_SYNC' ? (actions.length ? actions : ['re-applied pending pools']) : [], error };
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

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.driver?.close();
  }
}
