import type pg from 'pg';
import type { ControlClient } from '../../db/control-client.js';
import { TENANT_COMPONENT } from './schema-version-ledger.js';

export interface SchemaVersionRow {
  version: string;
  appliedAt: Date;
  appliedBy: string | null;
  description: string | null;
}

/** The tenant database's own record of its version (the truth). */
export async function readSchemaVersion(client: pg.ClientBase): Promise<SchemaVersionRow | null> {
  const { rows } = await client.query<{ Version: string; AppliedAt: Date; AppliedBy: string | null; Description: string | null }>(
    `SELECT "Version", "AppliedAt", "AppliedBy", "Description" FROM public."__SchemaVersion" WHERE "Component" = $1`,
    [TENANT_COMPONENT],
  );
  const r = rows[0];
  return r ? { version: r.Version, appliedAt: r.AppliedAt, appliedBy: r.AppliedBy, description: r.Description } : null;
}

/** Mirrors it in the control database, so lists never open a tenant database. */
export async function mirrorSchemaVersion(db: ControlClient, tenantId: string, row: SchemaVersionRow): Promise<void> {
  await db.$transaction([
    db.tenantSchemaVersion.upsert({
      where: { tenantId_component: { tenantId, component: TENANT_COMPONENT } },
      create: { tenantId, component: TENANT_COMPONENT, ...row },
      update: row,
    }),
    db.tenant.update({ where: { id: tenantId }, data: { templateVersion: row.version } }),
  ]);
}
