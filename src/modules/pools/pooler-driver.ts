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

/** The pooler did not answer; the desired configuration is on disk, waiting for it. */
export class PoolerUnavailableError extends Error {
  override name = 'PoolerUnavailableError';
}

/** These pools cannot be applied as given (invalid, unknown role, or rejected by the pooler). */
export class PoolerConfigError extends Error {
  override name = 'PoolerConfigError';
}

/**
 * The pooler's configuration could not be written (EPERM, EACCES, EROFS, ENOSPC...): the
 * pooler keeps running what it last read. `running` is what it was shown to run after the
 * failure (null when it could not be asked), so that only the pools it has are IN_SYNC.
 */
export class PoolerFilesError extends Error {
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
