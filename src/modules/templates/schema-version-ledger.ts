import semver from 'semver';
import type { MigrationLedger } from '../../platform/db/migrations.js';
import { readSchemaVersion, TENANT_COMPONENT } from '../tenants/index.js';

export { TENANT_COMPONENT };

/**
 * `__SchemaVersion` in a template or tenant database: one row per component holding the
 * version it is at. Every template version up to that one counts as applied. In a template
 * database (the control plane's own) the table is created here; in a tenant database it must
 * already exist and be the control plane's plain table (checked under a lock before reading).
 */
export function schemaVersionLedger(options: { component: string; appliedBy: string; database: 'template' | 'tenant' }): MigrationLedger {
  return {
    async ensure(client) {
      if (options.database === 'tenant') return;
      await client.query(`CREATE TABLE IF NOT EXISTS public."__SchemaVersion" (
        "Component" TEXT PRIMARY KEY,
        "Version" TEXT NOT NULL,
        "AppliedAt" TIMESTAMPTZ NOT NULL DEFAULT now(),
        "AppliedBy" TEXT,
        "Description" TEXT
      )`);
      await client.query(`CREATE INDEX IF NOT EXISTS "__SchemaVersion_AppliedAt_idx" ON public."__SchemaVersion" ("AppliedAt" DESC)`);
      // Every tenant may read its version; nobody but the control plane may write it.
      await client.query(`REVOKE ALL ON public."__SchemaVersion" FROM PUBLIC; GRANT SELECT ON public."__SchemaVersion" TO PUBLIC`);
    },
    async applied(client, candidates) {
      let current: string | undefined;
      if (options.database === 'tenant') {
        if (options.component !== TENANT_COMPONENT) throw new Error(`tenant databases record the ${TENANT_COMPONENT} component only`);
        current = (await readSchemaVersion(client))?.version;
      } else {
        const { rows } = await client.query<{ Version: string }>(`SELECT "Version" FROM public."__SchemaVersion" WHERE "Component" = $1::pg_catalog.text`, [options.component]);
        current = rows[0]?.Version;
      }
      // Every version at or below the recorded one is applied; no checksums are kept here.
      const applied = candidates.filter((m) => current !== undefined && semver.lte(m.name, current));
      return new Map(applied.map((m) => [m.name, null]));
    },
    async record(client, migration) {
      await client.query(
        `INSERT INTO public."__SchemaVersion" ("Component", "Version", "AppliedAt", "AppliedBy", "Description")
         VALUES ($1::pg_catalog.text, $2::pg_catalog.text, pg_catalog.now(), $3::pg_catalog.text, $4::pg_catalog.text)
         ON CONFLICT ("Component") DO UPDATE SET "Version" = EXCLUDED."Version", "AppliedAt" = EXCLUDED."AppliedAt",
           "AppliedBy" = EXCLUDED."AppliedBy", "Description" = EXCLUDED."Description"`,
        [options.component, migration.name, options.appliedBy, migration.description ?? null],
      );
    },
  };
}
