import { createHash } from 'node:crypto';
import type pg from 'pg';

/** One SQL step, applied in its own transaction together with its ledger entry. */
export interface Migration {
  name: string;
  sql: string;
  /** SHA-256 (hex) of the SQL, as Prisma computes it for migration.sql. */
  checksum: string;
  description?: string;
}

/** Where a database records which migrations it has: `_prisma_migrations`, `__SchemaVersion`, ... */
export interface MigrationLedger {
  ensure(client: pg.ClientBase): Promise<void>;
  /** Which of `candidates` are applied, with their recorded checksums (null where the ledger keeps none). */
  applied(client: pg.ClientBase, candidates: readonly Migration[]): Promise<Map<string, string | null>>;
  record(client: pg.ClientBase, migration: Migration, startedAt: Date): Promise<void>;
}

export class MigrationChecksumError extends Error {}

/** One migration failed; it was rolled back, those before it stay applied. */
export class MigrationFailedError extends Error {
  constructor(
    readonly migration: string,
    cause: unknown,
  ) {
    super(`migration ${migration} failed: ${(cause as Error).message}`, { cause });
  }
}

export function checksumOf(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

/**
 * The one migration runner: used for the control database (Prisma's folder format)
 * and for tenant schema templates. A session advisory lock keeps two servers from
 * applying the same migrations at once; each migration and its record commit together.
 */
export async function applyMigrations(
  client: pg.ClientBase,
  migrations: readonly Migration[],
  ledger: MigrationLedger,
  options: {
    lockKey: bigint;
    onApplied?: (m: Migration) => void | Promise<void>;
    /** How a migration's SQL runs (inside its transaction); default: as the session's user. */
    execute?: (client: pg.ClientBase, m: Migration) => Promise<void>;
  },
): Promise<Migration[]> {
  const execute = options.execute ?? ((c: pg.ClientBase, m: Migration) => c.query(m.sql).then(() => undefined));
  await client.query('SELECT pg_catalog.pg_advisory_lock($1::pg_catalog.int8)', [options.lockKey.toString()]);
  try {
    await ledger.ensure(client);
    const applied = await ledger.applied(client, migrations);
    for (const m of migrations) {
      const recorded = applied.get(m.name);
      if (recorded && recorded !== m.checksum) {
        throw new MigrationChecksumError(`migration ${m.name} was changed after it was applied (checksum ${recorded.slice(0, 12)}… recorded, ${m.checksum.slice(0, 12)}… on disk)`);
      }
    }
    const pending = migrations.filter((m) => !applied.has(m.name));
    for (const m of pending) {
      const startedAt = new Date();
      await client.query('BEGIN');
      try {
        await execute(client, m);
        await ledger.record(client, m, startedAt);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new MigrationFailedError(m.name, err);
      }
      await options.onApplied?.(m);
    }
    return pending;
  } finally {
    await client.query('SELECT pg_catalog.pg_advisory_unlock($1::pg_catalog.int8)', [options.lockKey.toString()]);
  }
}
