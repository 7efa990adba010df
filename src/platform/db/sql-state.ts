import pg from 'pg';

/**
 * The SQLSTATE of a failed statement, from node-postgres or from Prisma (whose driver adapter
 * keeps PostgreSQL's code as `originalCode`, on the error's cause or in its meta); null for
 * anything else.
 */
export function sqlStateOf(err: unknown): string | null {
  if (err instanceof pg.DatabaseError) return err.code ?? null;
  const e = err as { cause?: { originalCode?: unknown }; meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } } } | null;
  const code = e?.cause?.originalCode ?? e?.meta?.driverAdapterError?.cause?.originalCode;
  return typeof code === 'string' ? code : null;
}

/** lock_not_available: a lock was not granted within lock_timeout (or NOWAIT found it taken). */
export const LOCK_NOT_AVAILABLE = '55P03';
