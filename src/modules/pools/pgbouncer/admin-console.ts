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
  /**
   * Keep one connection open for the short commands (RELOAD, SHOW, RESUME, RECONNECT, SHOW
   * VERSION) instead of opening one per call: a login to the console costs a SCRAM exchange
   * (3 ms here, more than RELOAD itself at 600 pools), paid on every pool change and every
   * usage sample. PAUSE, which can wait long, always gets a connection of its own.
   */
  hold?: boolean;
  /** A short command on the held connection that takes longer ends it (PgBouncer hung): default 15 s. */
  commandTimeoutMs?: number;
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

const COMMAND_TIMEOUT_MS = 15_000;

export class AdminConsole {
  /** The connection kept for short commands (`hold`), once one succeeded on it; null: none open. */
  private held: pg.Client | null = null;
  /** The held connection's commands, one after another. */
  private turns: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly target: AdminConsoleTarget) {}

  /** Failing to connect means the pooler is unavailable. */
  private async connect(): Promise<pg.Client> {
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
    return client;
  }

  private dropped(err: unknown): PoolerUnavailableError {
    const { host, port } = this.target;
    return new PoolerUnavailableError(`PgBouncer admin console at ${host}:${port} dropped: ${(err as Error).message}`, { cause: err });
  }

  /**
   * A fresh connection for this call, closed after it: nothing goes stale when PgBouncer
   * restarts. Losing the connection means the pooler is unavailable.
   */
  private async run<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      return await fn(client);
    } catch (err) {
      if (isServerError(err) || err instanceof PauseTimeoutError) throw err;
      throw this.dropped(err);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * One short command, on the held connection when `hold` is set, one at a time (a client
   * takes one query at a time: the sampler's SHOW SERVERS and an apply's RELOAD wait their
   * turn, as PgBouncer, single-threaded, would make them anyway). A held connection that turns
   * out to be gone (PgBouncer restarted since) is replaced once: the commands sent this way are
   * idempotent. One that does not answer within the command timeout is ended (a hung PgBouncer
   * is unavailable, not a hang of ours).
   */
  private command(text: string): Promise<Row[]> {
    if (!this.target.hold || this.closed) return this.run(async (c) => (await c.query(text)).rows as Row[]);
    const turn = this.turns.then(() => this.onHeldConnection(text));
    this.turns = turn.catch(() => undefined);
    return turn;
  }

  private async onHeldConnection(text: string): Promise<Row[]> {
    const reused = this.held;
    if (reused) {
      try {
        return await this.onHeld(reused, text);
      } catch (err) {
        if (isServerError(err) || err instanceof PoolerUnavailableError) throw err;
        // Gone before or while we asked: once more, on a new connection.
      }
    }
    const client = await this.connect();
    try {
      const rows = await this.onHeld(client, text);
      if (this.closed) this.release(client);
      else this.keep(client);
      return rows;
    } catch (err) {
      this.release(client);
      if (isServerError(err) || err instanceof PoolerUnavailableError) throw err;
      throw this.dropped(err);
    }
  }

  private keep(client: pg.Client): void {
    this.held = client;
    const forget = () => this.release(client);
    client.once('end', forget);
    client.once('error', forget);
  }

  /** Stops using `client` and closes it (never throws). */
  private release(client: pg.Client): void {
    if (this.held === client) this.held = null;
    void client.end().catch(() => undefined);
  }

  private async onHeld(client: pg.Client, text: string): Promise<Row[]> {
    let timer: NodeJS.Timeout | undefined;
    const ms = this.target.commandTimeoutMs ?? COMMAND_TIMEOUT_MS;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.release(client);
        const { host, port } = this.target;
        reject(new PoolerUnavailableError(`PgBouncer admin console at ${host}:${port} did not answer ${text} within ${ms} ms`));
      }, ms);
    });
    try {
      return (await Promise.race([client.query(text), late])).rows as Row[];
    } catch (err) {
      if (!isServerError(err)) this.release(client);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the held connection; later calls open one per call. */
  async close(): Promise<void> {
    this.closed = true;
    const client = this.held;
    this.held = null;
    await client?.end().catch(() => undefined);
  }

  /**
   * Re-reads pgbouncer.ini and the auth file. PgBouncer 1.18 answers RELOAD with success
   * even when it rejected (part of) the file, so callers must check SHOW DATABASES after.
   */
  async reload(): Promise<void> {
    await this.command('RELOAD');
  }

  /** SHOW DATABASES → tenant pools (the console's own `pgbouncer` entry left out). */
  async showDatabases(): Promise<ObservedPool[]> {
    return (await this.command('SHOW DATABASES'))
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
    for (const r of await this.command('SHOW POOLS')) {
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
    for (const r of await this.command('SHOW SERVERS')) {
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
    await this.command(`RESUME ${database}`);
  }

  /** `RECONNECT <db>`: each server connection of the pool is closed once released (a repointed pool forgets the old server). */
  async reconnect(database: string): Promise<void> {
    await this.command(`RECONNECT ${database}`);
  }

  async ping(): Promise<void> {
    await this.command('SHOW VERSION');
  }
}
