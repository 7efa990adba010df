// PgCat's admin console: the pseudo-database `pgcat`, reached with node-postgres (MD5 login
// with general.admin_username/admin_password, simple query protocol only).
//
// Column names are from PgCat's source (postgresml/pgcat src/admin.rs, src/stats/pool.rs),
// not from a running PgCat:
// - SHOW DATABASES: one row per (pool, user, shard, server): name (`<pool>_shard_<n>_primary`),
//   host, port, database, force_user, pool_size, min_pool_size, reserve_pool, pool_mode,
//   max_connections (PgCat fills it with the user's pool_size), current_connections, paused, disabled.
// - SHOW POOLS: one row per (pool, user): database (the pool name), user, pool_mode, cl_idle,
//   cl_active, cl_waiting, cl_cancel_req, sv_active, sv_idle, sv_used, sv_tested, sv_login,
//   maxwait, maxwait_us. PgBouncer's names and meanings, so its mapping is reused.
// - RELOAD: on a file it cannot load, PgCat returns the error from the admin handler, which
//   ends the client connection (no ErrorResponse); the old configuration keeps running.
import pg from 'pg';
import { PoolerUnavailableError, type ObservedPool, type PoolStats } from '../pooler-driver.js';
import { toPoolStats } from '../pgbouncer/admin-console.js';
import { num, text } from '../pooler-plumbing.js';
import { PGCAT_ADMIN_DATABASES } from './pgcat-config.js';

export interface PgCatAdminTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  connectTimeoutMs?: number;
  /** A RELOAD that builds many pools can take a while, but must not hang an apply forever. */
  queryTimeoutMs?: number;
}

type Row = Record<string, unknown>;

/** PgCat's Address::name() suffix; what is left is the pool name. */
const ADDRESS_SUFFIX = /_shard_\d+_(?:primary|replica_\d+|mirror_\d+)$/;

export function pgCatPoolName(addressName: string): string {
  return addressName.replace(ADDRESS_SUFFIX, '');
}

/**
 * SHOW DATABASES rows → one ObservedPool per pool name. Tenantry renders one user, shard
 * and server per pool, so a pool has one row; should there be more, the first one counts.
 */
export function toPgCatObservedPools(rows: readonly Row[]): ObservedPool[] {
  const pools = new Map<string, ObservedPool>();
  for (const r of rows) {
    if (typeof r.name !== 'string') continue;
    const name = pgCatPoolName(r.name);
    if (PGCAT_ADMIN_DATABASES.includes(name) || pools.has(name)) continue;
    pools.set(name, {
      name,
      database: String(r.database),
      poolSize: num(r.pool_size),
      maxDbConnections: num(r.max_connections),
      mode: text(r.pool_mode),
    });
  }
  return [...pools.values()];
}

/** SHOW POOLS rows → stats summed per pool name. */
export function toPgCatPoolStats(rows: readonly Row[]): Map<string, PoolStats> {
  return toPoolStats(rows.filter((r) => !PGCAT_ADMIN_DATABASES.includes(String(r.database))));
}

function isServerError(err: unknown): boolean {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && 'severity' in err;
}

export class PgCatAdmin {
  constructor(private readonly target: PgCatAdminTarget) {}

  /** A fresh connection per call, as for PgBouncer: nothing goes stale across restarts. */
  private async connect(): Promise<pg.Client> {
    const { host, port } = this.target;
    const client = new pg.Client({
      host,
      port,
      user: this.target.user,
      password: this.target.password,
      database: 'pgcat',
      connectionTimeoutMillis: this.target.connectTimeoutMs ?? 5000,
      query_timeout: this.target.queryTimeoutMs ?? 30_000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw new PoolerUnavailableError(`PgCat admin console at ${host}:${port} is unreachable: ${(err as Error).message}`, { cause: err });
    }
  }

  private async rows(command: string): Promise<Row[]> {
    const client = await this.connect();
    try {
      return (await client.query(command)).rows as Row[];
    } catch (err) {
      if (isServerError(err)) throw err;
      const { host, port } = this.target;
      throw new PoolerUnavailableError(`PgCat admin console at ${host}:${port} dropped: ${(err as Error).message}`, { cause: err });
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Asks PgCat to re-read pgcat.toml. True when it confirmed; false when it answered with
   * an error or closed the connection, which is how it refuses a file (see above). Only a
   * failed login throws (PoolerUnavailableError).
   */
  async reload(): Promise<boolean> {
    const client = await this.connect();
    try {
      await client.query('RELOAD');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async showDatabases(): Promise<ObservedPool[]> {
    return toPgCatObservedPools(await this.rows('SHOW DATABASES'));
  }

  async showPools(): Promise<Map<string, PoolStats>> {
    return toPgCatPoolStats(await this.rows('SHOW POOLS'));
  }
}
