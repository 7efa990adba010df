import semver from 'semver';
import type { MigrationLedger } from '../../db/migrations.js';

export const TENANT_COMPONENT = 'Tenant';

/** Advisory lock taken while a tenant or template database's schema moves (per database). */
export const SCHEMA_MIGRATION_LOCK = 0x7e4a4e7an;

/**
 * `__SchemaVersion` in a tenant (or template) database: one row per component holding
 * the version it is at. Every template version up to that one counts as applied.
 */
export function schemaVersionLedger(options: { component: string; appliedBy: string }): MigrationLedger {
  return {
    async ensure(client) {
      await client.query(`CREATE TABLE IF NOT EXISTS public."__SchemaVersion" (
        "Component" TEXT PRIMARY KEY,
        "Version" TEXT NOT NULL,
        "AppliedAt" TIMESTAMPTZ NOT NULL DEFAULT now(),
        "AppliedBy" TEXT,
        "Description" TEXT
      )`);
      await client.query(`CREATE INDEX IF NOT EXISTS "__SchemaVersion_AppliedAt_idx" ON public."__SchemaVersion" ("AppliedAt" DESC)`);
    },
    async applied(client, candidates) {
      const { rows } = await client.query<{ Version: string }>(
        `SELECT "Version" FROM public."__SchemaVersion" WHERE "Component" = $1`,
        [options.component],
      );
      const current = rows[0]?.Version;
      // Every version at or below the recorded one is applied; no checksums are kept here.
      const applied = candidates.filter((m) => current !== undefined && semver.lte(m.name, current));
      return new Map(applied.map((m) => [m.name, null]));
    },
    async record(client, migration) {
      await client.query(
        `INSERT INTO public."__SchemaVersion" ("Component", "Version", "AppliedAt", "AppliedBy", "Description")
         VALUES ($1, $2, now(), $3, $4)
         ON CONFLICT ("Component") DO UPDATE SET "Version" = EXCLUDED."Version", "AppliedAt" = EXCLUDED."AppliedAt",
           "AppliedBy" = EXCLUDED."AppliedBy", "Description" = EXCLUDED."Description"`,
        [options.component, migration.name, options.appliedBy, migration.description ?? null],
      );
    },
  };
}
