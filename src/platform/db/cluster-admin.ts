import pg from 'pg';
import { describeServer, withDatabase } from './connection-url.js';
import { serverFacts } from './server.sql.js';
import { CLUSTER_ADMIN_POOL } from './connection-budget.js';
import { CATALOG_SEARCH_PATH, startupOptions } from './session-settings.js';

/** How long the control plane's sessions on a managed server may wait, for a connection, a lock, a statement. */
export interface SessionLimits {
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  connectTimeoutMs: number;
}

/** Who the control plane is on a server: a superuser, or a least-privilege role (see docs/security.md). */
export interface ControlPlaneIdentity {
  role: string;
  superuser: boolean;
  serverVersionNum: number;
}

export interface ServerFacts {
  serverVersion: string;
  serverVersionNum: number;
  maxConnections: number;
  superuserReservedConnections: number;
  /** Slots for roles with pg_use_reserved_connections (PostgreSQL 16+; 0 before). */
  reservedConnections: number;
  /** wal_level: `logical` is what ONLINE moves to and from this server need. */
  walLevel: string;
  maxReplicationSlots: number;
  /** Replication slots that exist now (of max_replication_slots). */
  replicationSlotsUsed: number;
  maxWalSenders: number;
}

/**
 * The control plane's access to one managed PostgreSQL server: a small pool on its
 * maintenance database for catalog work and DDL, and short-lived clients into single
 * databases. Every session starts with search_path `pg_catalog, pg_temp` and the
 * statement and lock timeouts, as startup options no tenant setting can override.
 */
export class ClusterAdmin {
  readonly pool: pg.Pool;
  /** Statements sent that read pg_stat_activity (how tests prove the sampler shares one read). */
  readonly stats = { activityReads: 0 };
  readonly host: string;
  readonly port: number;

  private readonly options: string;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly url: string,
    /** True for the server that also holds the control database (its connections count here too). */
    readonly holdsControlDatabase: boolean,
    private readonly limits: SessionLimits,
  ) {
    this.options = startupOptions({ searchPath: CATALOG_SEARCH_PATH, statementTimeoutMs: limits.statementTimeoutMs, lockTimeoutMs: limits.lockTimeoutMs });
    this.pool = new pg.Pool({
      connectionString: url,
      max: CLUSTER_ADMIN_POOL,
      application_name: 'tenantry-admin',
      options: this.options,
      connectionTimeoutMillis: limits.connectTimeoutMs,
    });
    // An idle client that dies (server restart) must not crash the process.
    this.pool.on('error', () => undefined);
    ({ host: this.host, port: this.port } = describeServer(url));
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    if (sql.includes('pg_stat_activity')) this.stats.activityReads++;
    return this.pool.query<R>(sql, params);
  }

  /**
   * Runs `fn` on a fresh connection to `database` (never pooled: whatever happened in it
   * stays with it), closed afterwards whatever happens.
   */
  async withDatabase<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await this.openDatabase(database);
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** A fresh connection to `database` (never pooled) for work that spans several calls; the caller ends it. */
  async openDatabase(database: string): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: withDatabase(this.url, database),
      application_name: 'tenantry-admin',
      options: this.options,
      connectionTimeoutMillis: this.limits.connectTimeoutMs,
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  private identityRead: Promise<ControlPlaneIdentity> | undefined;

  /** Read once: the role the control plane logs in as, whether it is superuser, and the server's version. */
  identity(): Promise<ControlPlaneIdentity> {
    this.identityRead ??= this.pool
      .query<{ role: string; superuser: boolean; version: number }>(
        `SELECT CURRENT_USER AS role, r.rolsuper AS superuser, pg_catalog.current_setting('server_version_num')::pg_catalog.int4 AS version
         FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER`,
      )
      .then(({ rows }) => ({ role: rows[0]!.role, superuser: rows[0]!.superuser, serverVersionNum: rows[0]!.version }));
    this.identityRead.catch(() => (this.identityRead = undefined));
    return this.identityRead;
  }

  async facts(): Promise<ServerFacts> {
    return (await this.query<ServerFacts>(serverFacts)).rows[0]!;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
