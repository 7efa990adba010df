import { AsyncLocalStorage } from 'node:async_hooks';
import type pg from 'pg';
import { withCheckedOutClient } from '../db/checked-out-client.js';
import { LOCK_NOT_AVAILABLE } from '../db/sql-state.js';

/**
 * The locks a request can take, in the one order they may be taken: a request holding a lock
 * of some rank may only take locks of a higher rank (or one it already holds). Two requests
 * therefore never wait for each other in a cycle.
 *
 *   1. tenant    everything done to one tenant database and role name on one cluster
 *   2. capacity  checking and changing the quotas promised on one cluster
 */
const RANKS = { tenant: 1, capacity: 2 } as const;

export interface LockName {
  kind: keyof typeof RANKS;
  /** Hashed into the advisory lock key. */
  key: string;
  /** For messages: "tenant acme_dev". */
  label: string;
}

/** Another session holds the lock and did not let go within lock_timeout. */
export class LockTimeoutError extends Error {
  constructor(readonly lock: LockName) {
    super(`timed out waiting for the lock on ${lock.label}`);
    this.name = 'LockTimeoutError';
  }
}

/** No connection of the lock pool came free in time. */
export class LockPoolTimeoutError extends Error {
  constructor(cause: unknown) {
    super('timed out waiting for a connection to take a lock', { cause });
    this.name = 'LockPoolTimeoutError';
  }
}

/**
 * The session that held the request's locks has ended (the server terminated it, the network
 * dropped it): PostgreSQL let go of the locks with it, so another request may hold them now.
 */
export class LockLostError extends Error {
  constructor(
    readonly locks: readonly LockName[],
    cause: unknown,
  ) {
    super(`the control plane lost its lock on ${locks.map((l) => l.label).join(', ')}: its session to the control database ended (${(cause as Error).message})`, { cause });
    this.name = 'LockLostError';
  }
}

interface Session {
  client: pg.PoolClient;
  held: LockName[];
  broken: Error | null;
  /** False once the request that opened it let go: its client is back in the pool, maybe another request's. */
  open: boolean;
}

/**
 * PostgreSQL advisory locks in the control database. Every lock a request takes is held on
 * ONE session (nested calls share it through AsyncLocalStorage), so a request never needs a
 * second connection while it holds the first: the pool cannot run dry of connections that
 * lock holders are waiting for. Waits end after the pool's lock_timeout; a crashed holder
 * releases its locks with its session.
 *
 * AsyncLocalStorage hands the session to everything started inside `fn`, timers included.
 * Work that outlives the request or runs beside it (a look at the tenant "soon", a background
 * pass) must start from `detached`: otherwise it would count as already holding the request's
 * locks and run beside it. A session whose request has finished is never reused.
 */
export class AdvisoryLocks {
  private readonly context = new AsyncLocalStorage<Session>();

  /** `pool` must be opened with a lock_timeout (see startupOptions) and a connection timeout. */
  constructor(private readonly pool: pg.Pool) {}

  /** Runs `fn` holding `lock`; throws LockTimeoutError when another session keeps it too long. */
  with<T>(lock: LockName, fn: () => Promise<T>): Promise<T> {
    return this.holding(lock, 'wait', fn) as Promise<T>;
  }

  /** Like `with`, but gives up at once when someone else holds the lock (returns `{ busy: true }`). */
  try<T>(lock: LockName, fn: () => Promise<T>): Promise<T | { busy: true }> {
    return this.holding(lock, 'try', fn);
  }

  /** Runs `fn` (which may start timers and background work) outside the current request's locks. */
  detached<T>(fn: () => T): T {
    return this.context.exit(fn);
  }

  /**
   * Throws LockLostError when the current request's lock session has ended: its locks went
   * with it. Asks the session itself (one round trip), so a loss is seen even before the
   * connection's error event arrives. Outside any lock, it does nothing.
   */
  async assertHeld(): Promise<void> {
    const session = this.context.getStore();
    if (!session?.open || session.held.length === 0) return;
    if (!session.broken) {
      await session.client.query('SELECT 1').catch((err: Error) => {
        session.broken ??= err;
      });
    }
    if (session.broken) throw new LockLostError([...session.held], session.broken);
  }

  /** The locks the current request holds (for tests and assertions). */
  held(): readonly LockName[] {
    const session = this.context.getStore();
    return session?.open ? session.held : [];
  }

  private async holding<T>(lock: LockName, mode: 'wait' | 'try', fn: () => Promise<T>): Promise<T | { busy: true }> {
    const store = this.context.getStore();
    const session = store?.open ? store : undefined;
    if (session) {
      if (session.held.some((h) => h.key === lock.key)) return fn();
      const highest = Math.max(...session.held.map((h) => RANKS[h.kind]));
      if (RANKS[lock.kind] <= highest) {
        throw new Error(`lock order violated: ${lock.label} (${lock.kind}) taken while holding ${session.held.map((h) => h.label).join(', ')}`);
      }
      return this.acquireOn(session, lock, mode, fn);
    }
    let connected = false;
    try {
      return await withCheckedOutClient(this.pool, (client, state) => {
        connected = true;
        // One object: the client's error listener marks the session broken.
        const fresh: Session = Object.assign(state, { client, held: [], open: true });
        return this.context.run(fresh, () => this.acquireOn(fresh, lock, mode, fn)).finally(() => (fresh.open = false));
      });
    } catch (err) {
      throw !connected && /timeout/i.test((err as Error).message) ? new LockPoolTimeoutError(err) : err;
    }
  }

  private async acquireOn<T>(session: Session, lock: LockName, mode: 'wait' | 'try', fn: () => Promise<T>): Promise<T | { busy: true }> {
    const { client } = session;
    if (mode === 'try') {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [lock.key]);
      if (!rows[0]?.ok) return { busy: true };
    } else {
      await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [lock.key]).catch((err: { code?: string }) => {
        throw err.code === LOCK_NOT_AVAILABLE ? new LockTimeoutError(lock) : err;
      });
    }
    session.held.push(lock);
    try {
      return await fn();
    } finally {
      session.held.splice(session.held.indexOf(lock), 1);
      // A session lost to a server restart has lost its locks too: nothing to release.
      if (!session.broken) await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lock.key]).catch(() => undefined);
    }
  }
}
