import type pg from 'pg';

/**
 * Takes the advisory lock named by text `key` on `session`, held for as long as that session
 * lives (what a background run holds so that a server that dies lets go of its work); false
 * when another session holds it. The keys are in lock-names.ts.
 */
export async function trySessionLock(session: pg.ClientBase, key: string): Promise<boolean> {
  const { rows } = await session.query<{ ok: boolean }>('SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtextextended($1, 0)) AS ok', [key]);
  return rows[0]?.ok === true;
}
