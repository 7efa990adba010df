// The small contract between Tenantry's pool sync and a connection pooler (PgBouncer is the
// one supported): "run exactly these pools", "what are you running", "how busy are they".

export type PoolMode = 'session' | 'transaction';

/** One tenant's pool as Tenantry wants it. */
export interface PoolSpec {
  /** The alias clients connect to; Tenantry uses the tenant database name. */
  name: string;
  /** The database on the PostgreSQL server. */
  database: string;
  /** The tenant role: the pooler must be able to authenticate it. */
  user: string;
  poolSize: number;
  maxDbConnections: number;
  mode: PoolMode;
}

/** A pool as the pooler reports it. */
export interface ObservedPool {
  name: string;
  database: string;
  poolSize: number | null;
  maxDbConnections: number | null;
  mode: string | null;
}

export interface PoolStats {
  clientsActive: number;
  clientsWaiting: number;
  serversActive: number;
  serversIdle: number;
  maxWaitSeconds: number;
}

export interface PoolerDriver {
  readonly kind: 'pgbouncer';
  /**
   * Render the whole configuration for exactly these pools, validate it, write it
   * atomically (keeping the last good copy), reload, and verify with what the pooler reports.
   * Throws PoolerUnavailableError when the pooler cannot be reached (the file is still
   * written, so a restarted pooler picks it up: retry later), PoolerConfigError when the
   * pools cannot be applied (nothing written, or the last good configuration restored:
   * retrying the same pools will not help), PoolerFilesError when the configuration cannot
   * be written (the pooler keeps what it runs: retry once the folder is writable).
   */
  apply(pools: PoolSpec[]): Promise<void>;
  /** Resolves once the pooler answers (cheap: for readiness). */
  ping(): Promise<void>;
  /** Writes the configuration for these pools without reloading: for a pooler about to start. */
  writeFiles?(pools: readonly PoolSpec[]): Promise<void>;
  /** What the pooler is running now, tenant pools only. */
  observe(): Promise<ObservedPool[]>;
  /** Client and server counts, summed per pool name. */
  stats(): Promise<Map<string, PoolStats>>;
  /**
   * The pooler's server connections by PostgreSQL backend pid, and whether a client is
   * attached to each (one query; the usage sampler tells pooled from direct sessions).
   */
  serverBackends?(): Promise<Map<number, { clientAttached: boolean }>>;
  /** Public address clients use. */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** The pooler did not answer; the desired configuration is on disk, waiting for it. */
export class PoolerUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PoolerUnavailableError';
  }
}

/** These pools cannot be applied as given (invalid, unknown role, or rejected by the pooler). */
export class PoolerConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PoolerConfigError';
  }
}

/**
 * The pooler's configuration could not be written (EPERM, EACCES, EROFS, ENOSPC...): the
 * pooler keeps running what it last read. `running` is what it was shown to run after the
 * failure (null when it could not be asked), so that only the pools it has are IN_SYNC.
 */
export class PoolerFilesError extends Error {
  constructor(
    message: string,
    /** The errno code, e.g. EPERM (a metric label). */
    readonly code: string,
    readonly running: ObservedPool[] | null,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'PoolerFilesError';
  }
}
