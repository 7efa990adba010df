import type { ControlClient } from '../../db/control-client.js';
import type { Logger } from '../../logger.js';
import { PoolerConfigError, PoolerUnavailableError, type ObservedPool, type PoolerDriver, type PoolMode, type PoolSpec } from './pooler-driver.js';

export interface PoolDrift {
  /** Tenants whose pool the pooler does not have. */
  missing: string[];
  /** Pools the pooler has that belong to no active tenant. */
  orphaned: string[];
  /** Pools whose database, size or mode differ, with what differs. */
  mismatched: { name: string; differences: string[] }[];
}

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

  /** Records the wanted pool of one tenant (PENDING until the pooler has it). */
  async want(tenantId: string, spec: PoolSpec): Promise<void> {
    if (!this.driver) return;
    const data = { name: spec.name, mode: spec.mode, poolSize: spec.poolSize, maxConnections: spec.maxDbConnections, status: 'PENDING' as const, updatedAt: new Date() };
    await this.db.pool.upsert({ where: { tenantId }, create: { tenantId, ...data }, update: data });
  }

  async forget(tenantId: string): Promise<void> {
    await this.db.pool.deleteMany({ where: { tenantId } });
  }

  /** The pools of every active tenant, from the control database. */
  async desired(): Promise<{ tenantId: string; spec: PoolSpec }[]> {
    const rows = await this.db.pool.findMany({ where: { tenant: { status: 'ACTIVE' } }, include: { tenant: { select: { databaseName: true, roleName: true } } }, orderBy: { name: 'asc' } });
    return rows.map((r) => ({
      tenantId: r.tenantId,
      spec: { name: r.name, database: r.tenant.databaseName, user: r.tenant.roleName, poolSize: r.poolSize, maxDbConnections: r.maxConnections, mode: r.mode as PoolMode },
    }));
  }

  /**
   * Applies the whole wanted set. Never throws for the pooler's sake: an unreachable
   * pooler leaves changed pools PENDING (the reconciler retries), a refused configuration
   * marks them ERROR; the outcome says which.
   */
  async sync(): Promise<{ outcome: SyncOutcome; error: string | null }> {
    if (!this.driver) return { outcome: 'IN_SYNC', error: null };
    const desired = await this.desired();
    try {
      await this.driver.apply(desired.map((d) => d.spec));
    } catch (err) {
      const unavailable = err instanceof PoolerUnavailableError;
      if (!unavailable && !(err instanceof PoolerConfigError)) throw err;
      const message = (err as Error).message.slice(0, 500);
      this.logger.warn({ err, pooler: this.driver.kind }, unavailable ? 'pooler unreachable; pools stay PENDING' : 'pooler refused the configuration');
      await this.db.pool.updateMany({
        where: { tenantId: { in: desired.map((d) => d.tenantId) }, status: { not: 'IN_SYNC' } },
        data: { status: unavailable ? 'PENDING' : 'ERROR', lastError: message },
      });
      return { outcome: unavailable ? 'PENDING' : 'ERROR', error: message };
    }
    await this.db.pool.updateMany({
      where: { tenantId: { in: desired.map((d) => d.tenantId) } },
      data: { status: 'IN_SYNC', lastSyncedAt: new Date(), lastError: null },
    });
    return { outcome: 'IN_SYNC', error: null };
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
      await this.db.pool.updateMany({ where: { tenantId: { in: desired.map((d) => d.tenantId) } }, data: { status: 'PENDING', lastError: err.message.slice(0, 500) } });
      return { pooler, reachable: false, found, outcome: 'PENDING', actions: [], error: err.message };
    }
    Object.assign(found, compare(desired.map((d) => d.spec), observed));
    const drifted = new Set([...found.missing, ...found.mismatched.map((m) => m.name)]);
    if (drifted.size > 0) {
      await this.db.pool.updateMany({ where: { name: { in: [...drifted] } }, data: { status: 'DRIFTED' } });
    }
    const anyPending = desired.length > 0 && (await this.db.pool.count({ where: { status: { not: 'IN_SYNC' } } })) > 0;
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

function compare(desired: PoolSpec[], observed: ObservedPool[]): PoolDrift {
  const seen = new Map(observed.map((o) => [o.name, o]));
  const drift: PoolDrift = { missing: [], orphaned: [], mismatched: [] };
  for (const want of desired) {
    const got = seen.get(want.name);
    seen.delete(want.name);
    if (!got) {
      drift.missing.push(want.name);
      continue;
    }
    const differences = [
      got.database !== want.database ? `database ${got.database} ≠ ${want.database}` : null,
      got.poolSize !== want.poolSize ? `pool_size ${got.poolSize} ≠ ${want.poolSize}` : null,
      got.maxDbConnections !== want.maxDbConnections ? `max_db_connections ${got.maxDbConnections} ≠ ${want.maxDbConnections}` : null,
      got.mode !== want.mode ? `pool_mode ${got.mode} ≠ ${want.mode}` : null,
    ].filter((d): d is string => d !== null);
    if (differences.length) drift.mismatched.push({ name: want.name, differences });
  }
  drift.orphaned = [...seen.keys()];
  return drift;
}
