import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { PRISMA_MIGRATE_LOCK } from '../locks/lock-names.js';
import { applyMigrations, checksumOf, type Migration, type MigrationLedger } from './migrations.js';

export async function loadControlMigrations(dir = path.resolve('prisma/migrations')): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(path.join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: checksumOf(sql) };
    }),
  );
}

/**
 * `_prisma_migrations`, with the columns and values `prisma migrate deploy` writes,
 * so that Prisma's own tooling sees these migrations as applied.
 */
export const prismaMigrationsLedger: MigrationLedger = {
  async ensure(client) {
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0
    )`);
  },
  async applied(client) {
    const { rows } = await client.query<{ migration_name: string; checksum: string }>(
      `SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    return new Map(rows.map((r) => [r.migration_name, r.checksum]));
  },
  async record(client, m, startedAt) {
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, started_at, applied_steps_count)
       VALUES ($1, $2, now(), $3, NULL, $4, 1)`,
      [randomUUID(), m.checksum, m.name, startedAt],
    );
  },
};

export async function migrateControlDatabase(client: pg.ClientBase): Promise<Migration[]> {
  return applyMigrations(client, await loadControlMigrations(), prismaMigrationsLedger, { lockKey: PRISMA_MIGRATE_LOCK });
}
