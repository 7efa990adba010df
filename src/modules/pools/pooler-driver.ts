// What Tenantry's pool sync and the pooler driver (PgBouncer's, the one supported pooler) speak
// in: the pools wanted and observed, their live numbers, and how an apply fails.

export type PoolMode = 'session' | 'transaction';

/** One tenant's pool as Tenantry wants it. */
export interface PoolSpec {
  /** The alias clients connect to; Tenantry uses the tenant database name. */
  name: string;
  database: string;
  /** The tenant role: the pooler must be able to authenticate it. */
  user: string;
  poolSize: number;
  maxDbConnections: number;
  mode: PoolMode;
  /**
   * The server the pool connects to: the tenant's cluster. Left out, the pooler's default
   * server (the cluster it was started in front of). The alias (`name`) never changes when
   * the tenant moves, so its pooled connection string survives a move.
   */
  serverHost?: string;
  serverPort?: number;
}

export interface ObservedPool {
  name: string;
  database: string;
  poolSize: number | null;
  maxDbConnections: number | null;
  mode: string | null;
  /** The server it connects to, as the pooler reports it. */
  host: string | null;
  port: number | null;
}

export interface PoolStats {
  clientsActive: number;
  clientsWaiting: number;
  serversActive: number;
  serversIdle: number;
  maxWaitSeconds: number;
}

/** A pool the pooler runs but no client has used yet: SHOW POOLS has no row for it. */
export const NO_ACTIVITY: PoolStats = Object.freeze({ clientsActive: 0, clientsWaiting: 0, serversActive: 0, serversIdle: 0, maxWaitSeconds: 0 });

/** One read of every pool's live numbers. */
export interface PoolStatsReading {
  /** A pool's numbers (NO_ACTIVITY when unused); null when its PgBouncer did not answer. */
  of(name: string): PoolStats | null;
}

/**
 * A server connection of the pooler, as pg_stat_activity shows it: its role and backend pid. The
 * role tells servers apart (a pid is only unique on one server, and a tenant's role logs in on
 * the one cluster the tenant lives on).
 */
export function pooledBackendKey(role: string, pid: number): string {
  return `${role}\u0000${pid}`;
}

/** A pooler process's state as its supervisor reports it (PgBouncerProcess.status()). */
export interface PoolerProcessState {
  state: 'stopped' | 'starting' | 'up' | 'down';
  lastExit: string | null;
}

/**
 * Set on an apply's error when only some pools are concerned (one PgBouncer of several failed;
 * the others were applied and verified): the pools outside it are as wanted.
 */
export interface FailureScope {
  concerns(name: string): boolean;
  /** Which PgBouncer, for messages: "PgBouncer 2 of 4 (port 6434)". */
  label: string;
  /** The failing process's own state (whether it is down decides ERROR over PENDING). */
  process: PoolerProcessState | null;
}

/** How an apply (or a look at what the pooler runs) fails: one of the three below. */
export abstract class PoolerFailure extends Error {
  /** Set when the failure concerns some pools only (one PgBouncer of several). */
  scope?: FailureScope;
}

/** The pooler did not answer; the desired configuration is on disk, waiting for it. */
export class PoolerUnavailableError extends PoolerFailure {
  override name = 'PoolerUnavailableError';
}

/** These pools cannot be applied as given (invalid, unknown role, or rejected by the pooler). */
export class PoolerConfigError extends PoolerFailure {
  override name = 'PoolerConfigError';
}

/**
 * The pooler's configuration could not be written (EPERM, EACCES, EROFS, ENOSPC...): the
 * pooler keeps running what it last read. `running` is what it was shown to run after the
 * failure (null when it could not be asked), so that only the pools it has are IN_SYNC.
 */
export class PoolerFilesError extends PoolerFailure {
  override name = 'PoolerFilesError';

  constructor(
    message: string,
    /** The errno code, e.g. EPERM (a metric label). */
    readonly code: string,
    readonly running: ObservedPool[] | null,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface ApplyOptions {
  /**
   * How the apply is checked after RELOAD: `all` (the default) compares SHOW DATABASES with
   * every pool; `log` reads what PgBouncer logged for the RELOAD and falls back to `all` when
   * it logged a refusal or cannot be read (PoolSync's applies after a change; the
   * reconciler compares everything).
   */
  verify?: 'all' | 'log';
}

/** Where clients reach a pool. */
export interface PoolerAddress {
  host: string;
  port: number;
}

/**
 * What PoolSync, readiness and usage ask of the pooler: one PgBouncer (PgBouncerDriver) or
 * several, each with a share of the pools (PgBouncerShards). Not safe for concurrent applies:
 * PoolSync's single apply queue is the only caller of writeFiles and apply.
 */
export interface PoolerDriver {
  readonly kind: 'pgbouncer';
  /** Every address the pooler listens on (one per PgBouncer). */
  readonly addresses: readonly PoolerAddress[];
  /** Where the clients of this pool connect; the same for the pool's whole life, across moves. */
  addressOf(name: string): PoolerAddress;
  writeFiles(pools: readonly PoolSpec[]): Promise<void>;
  apply(pools: readonly PoolSpec[], options?: ApplyOptions): Promise<void>;
  observe(): Promise<ObservedPool[]>;
  /**
   * These pools were just shown to run as given (SHOW DATABASES compared in full, by the
   * reconciler): an apply after it need not touch the PgBouncers whose pools have not changed.
   */
  shownRunning(pools: readonly PoolSpec[]): void;
  /** One pool as the pooler runs it (null: not run), asking only the PgBouncer that has it. */
  observePool(name: string): Promise<ObservedPool | null>;
  /** Live numbers of every pool (SHOW POOLS on each PgBouncer); throws when none answers. */
  poolStats(): Promise<PoolStatsReading>;
  ping(): Promise<void>;
  /** The pooler's server connections, keyed by pooledBackendKey(user, PostgreSQL backend pid). */
  serverBackends(): Promise<Map<string, { clientAttached: boolean }>>;
  pause(name: string, timeoutMs: number): Promise<void>;
  resume(name: string): Promise<void>;
  reconnect(name: string): Promise<void>;
  close(): Promise<void>;
}
