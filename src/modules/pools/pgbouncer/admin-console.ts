// PgBouncer's admin console: the pseudo-database `pgbouncer`, reached with node-postgres.
// It speaks only the simple query protocol, so every call is a parameterless query string.
import pg from 'pg';
import { pooledBackendKey, PoolerUnavailableError, type ObservedPool, type PoolStats } from '../pooler-driver.js';
import { ADMIN_DATABASE } from './pgbouncer-config.js';

interface AdminConsoleTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  connectTimeoutMs?: number;
}

type Row = Record<string, unknown>;

/** A number from an admin console row (they come as text or numbers); null when absent. */
function num(v: unknown): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** An error the server sent (it has a SQLSTATE), as opposed to a broken connection. */
function isServerError(err: unknown): boolean {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && 'severity' in err;
}

/** PAUSE of a pool did not finish in time. */
export class PauseTimeoutError extends Error {
  override name = 'PauseTimeoutError';
}

export class AdminConsole {
  constructor(private readonly target: AdminConsoleTarget) {}

  /**
   * A fresh connection per call: the console is cheap to reach, and nothing goes stale
   * when PgBouncer restarts. Failing to connect, or losing the connection, means the
   * pooler is unavailable.
   */
  private async run<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const { host, port } = this.target;
    const client = new pg.Client({
      host,
      port,
      user: this.target.user,
      password: this.target.password,
      database: ADMIN_DATABASE,
      connectionTimeoutMillis: this.target.connectTimeoutMs ?? 5000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw new PoolerUnavailableError(`PgBouncer admin console at ${host}:${port} is unreachable: ${(err as Error).message}`, { cause: err });
    }
    try {
      return await fn(client);
    } catch (err) {
      if (isServerError(err) || err instanceof PauseTimeoutError) throw err;
      throw new PoolerUnavailableError(`PgBouncer admin console at ${host}:${port} dropped: ${(err as Error).message}`, { cause: err });
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async rows(command: string): Promise<Row[]> {
    return this.run(async (c) => (await c.query(command)).rows as Row[]);
  }

  /**
   * Re-reads pgbouncer.ini and the auth file. PgBouncer 1.18 answers RELOAD with success
   * even when it rejected (part of) the file, so callers must check SHOW DATABASES after.
   */
  async reload(): Promise<void> {
    await this.run((c) => c.query('RELOAD'));
  }

  /** SHOW DATABASES → tenant pools (the console's own `pgbouncer` entry left out). */
  async showDatabases(): Promise<ObservedPool[]> {
    return (await this.rows('SHOW DATABASES'))
      .filter((r) => r.name !== ADMIN_DATABASE)
      .map((r) => ({
        name: String(r.name),
        database: String(r.database),
        poolSize: num(r.pool_size),
        // PgBouncer shows the database's max_db_connections as `max_connections` (0 = unlimited).
        maxDbConnections: num(r.max_connections),
        mode: typeof r.pool_mode === 'string' && r.pool_mode !== '' ? r.pool_mode : null,
        host: typeof r.host === 'string' && r.host !== '' ? r.host : null,
        port: num(r.port),
      }));
  }

  /** SHOW POOLS has one row per (database, user): summed per database, i.e. per pool name. */
  async showPools(): Promise<Map<string, PoolStats>> {
    const stats = new Map<string, PoolStats>();
    for (const r of await this.rows('SHOW POOLS')) {
      const name = String(r.database);
      if (name === ADMIN_DATABASE) continue;
      const s = stats.get(name) ?? { clientsActive: 0, clientsWaiting: 0, serversActive: 0, serversIdle: 0, maxWaitSeconds: 0 };
      s.clientsActive += num(r.cl_active) ?? 0;
      s.clientsWaiting += num(r.cl_waiting) ?? 0;
      s.serversActive += num(r.sv_active) ?? 0;
      s.serversIdle += num(r.sv_idle) ?? 0;
      // maxwait is whole seconds, maxwait_us the microseconds on top.
      s.maxWaitSeconds = Math.max(s.maxWaitSeconds, (num(r.maxwait) ?? 0) + (num(r.maxwait_us) ?? 0) / 1e6);
      stats.set(name, s);
    }
    return stats;
  }

  /**
   * SHOW SERVERS → backend pid (`remote_pid`) → whether a client is linked to it
   * (`link` names the client; empty while the connection waits idle in the pool).
   */
  async showServers(): Promise<Map<string, { clientAttached: boolean }>> {
    const backends = new Map<string, { clientAttached: boolean }>();
    for (const r of await this.rows('SHOW SERVERS')) {
      const pid = num(r.remote_pid);
      if (r.database === ADMIN_DATABASE || !pid || typeof r.user !== 'string') continue;
      backends.set(pooledBackendKey(r.user, pid), { clientAttached: typeof r.link === 'string' && r.link !== '' });
    }
    return backends;
  }

  /**
   * `PAUSE <db>`: resolves once PgBouncer released every server connection of the pool (its
   * clients queue meanwhile). Past `timeoutMs` the connection is dropped and PauseTimeoutError
   * thrown; the database stays paused until RESUME (the caller's to send).
   */
  async pause(database: string, timeoutMs: number): Promise<void> {
    await this.run(async (c) => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new PauseTimeoutError(`PAUSE ${database} did not finish within ${timeoutMs} ms (its server connections are still busy)`)), timeoutMs);
      });
      try {
        await Promise.race([c.query(`PAUSE ${database}`), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    });
  }

  /** `RESUME <db>`. */
  async resume(database: string): Promise<void> {
    await this.run((c) => c.query(`RESUME ${database}`));
  }

  /** `RECONNECT <db>`: each server connection of the pool is closed once released (a repointed pool forgets the old server). */
  async reconnect(database: string): Promise<void> {
    await this.run((c) => c.query(`RECONNECT ${database}`));
  }

  async ping(): Promise<void> {
    await this.rows('SHOW VERSION');
  }
}
