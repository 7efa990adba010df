import type pg from 'pg';

/**
 * Holds a session-level advisory lock, named by a string, for the duration of `fn`.
 * Other servers sharing the database wait for it; a crashed holder releases it.
 */
export async function withAdvisoryLock<T>(pool: pg.Pool, name: string, fn: () => Promise<T>): Promise<T> {
  return holding(pool, name, 'wait', fn) as Promise<T>;
}

/** Like withAdvisoryLock, but gives up at once when someone else holds the lock (returns `busy`). */
export function tryWithAdvisoryLock<T>(pool: pg.Pool, name: string, fn: () => Promise<T>): Promise<T | { busy: true }> {
  return holding(pool, name, 'try', fn);
}

async function holding<T>(pool: pg.Pool, name: string, mode: 'wait' | 'try', fn: () => Promise<T>): Promise<T | { busy: true }> {
  const client = await pool.connect();
  try {
    if (mode === 'wait') await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [name]);
    else {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [name]);
      if (!rows[0]?.ok) return { busy: true };
    }
    try {
      return await fn();
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [name]);
    }
  } finally {
    client.release();
  }
}
