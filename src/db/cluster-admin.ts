import pg from 'pg';
import { describeServer, withDatabase } from './connection-url.js';
import { serverFacts } from '../sql/server.sql.js';
import { CLUSTER_ADMIN_POOL } from './connection-budget.js';

export interface ServerFacts {
  serverVersion: string;
  serverVersionNum: number;
  maxConnections: number;
  superuserReservedConnections: number;
  /** Slots for roles with pg_use_reserved_connections (PostgreSQL 16+; 0 before). */
  reservedConnections: number;
}

/**
 * Superuser access to one managed PostgreSQL server: a small pool on its maintenance
 * database for catalog work and DDL, and short-lived clients into single databases.
 */
export class ClusterAdmin {
  readonly pool: pg.Pool;
  /** Statements sent that read pg_stat_activity (how tests prove the sampler shares one read). */
  readonly stats = { activityReads: 0 };
  readonly host: string;
  readonly port: number;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly url: string,
    /** True for the server that also holds the control database (its connections count here too). */
    readonly holdsControlDatabase = false,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: CLUSTER_ADMIN_POOL, application_name: 'tenantry-admin' });
    // An idle client that dies (server restart) must not crash the process.
    this.pool.on('error', () => undefined);
    const server = describeServer(url);
    this.host = server.host;
    this.port = server.port;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    if (sql.includes('pg_stat_activity')) this.stats.activityReads++;
    return this.pool.query<R>(sql, params);
  }

  /** Runs `fn` on a fresh connection to `database`, closed afterwards whatever happens. */
  async withDatabase<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: withDatabase(this.url, database), application_name: 'tenantry-admin' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async facts(): Promise<ServerFacts> {
    const { rows } = await this.query<{
      server_version: string;
      server_version_num: number;
      max_connections: number;
      superuser_reserved_connections: number;
      reserved_connections: number;
    }>(serverFacts);
    const r = rows[0]!;
    return {
      serverVersion: r.server_version,
      serverVersionNum: r.server_version_num,
      maxConnections: r.max_connections,
      superuserReservedConnections: r.superuser_reserved_connections,
      reservedConnections: r.reserved_connections,
    };
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
