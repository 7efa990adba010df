import { randomUUID } from 'node:crypto';
import { Prisma } from '../../generated/prisma/client.js';
import { TENANT_COLUMNS } from '../tenants/index.js';

/**
 * Stamps the template's `__SchemaVersion` row as applied now, by the caller ($1 component, $2
 * actor, $3 description), and returns it (run only once the table is known to be ours and locked).
 */
export const stampSchemaVersion = `UPDATE public."__SchemaVersion" SET "AppliedAt" = pg_catalog.now(), "AppliedBy" = $2::pg_catalog.text, "Description" = $3::pg_catalog.text
 WHERE "Component" = $1::pg_catalog.text
 RETURNING "Version" AS version, "AppliedAt" AS "appliedAt", "AppliedBy" AS "appliedBy", "Description" AS description`;

/**
 * A new tenant's record, in one statement (one round trip where a Prisma transaction takes one
 * per write): its row PROVISIONING, its quota, the quota's first history row and the audit
 * event (`audited`: the audit module's INSERT, reading from `tenant`). Returns the row
 * (TENANT_COLUMNS).
 */
export function startNewTenant(
  p: { id: string; slug: string; displayName: string; objectName: string; clusterId: string; placement: unknown; templateName: string; templateVersion: string; maxConnections: number; actor: string },
  audited: (from: Prisma.Sql) => Prisma.Sql,
): Prisma.Sql {
  return Prisma.sql`
    WITH tenant AS (
      INSERT INTO tenants (id, slug, display_name, status, database_name, role_name, cluster_id, placement, template_name, template_version, updated_at)
      VALUES (${p.id}::uuid, ${p.slug}, ${p.displayName}, 'PROVISIONING', ${p.objectName}, ${p.objectName}, ${p.clusterId}::uuid,
              ${JSON.stringify(p.placement)}::jsonb, ${p.templateName}, ${p.templateVersion}, now())
      RETURNING *
    ), quota AS (
      INSERT INTO quotas (tenant_id, max_connections, updated_by) SELECT tenant.id, ${p.maxConnections}, ${p.actor} FROM tenant RETURNING tenant_id
    ), change AS (
      INSERT INTO quota_changes (id, tenant_id, actor, old_max_connections, new_max_connections, reason)
      SELECT ${randomUUID()}::uuid, tenant.id, ${p.actor}, NULL, ${p.maxConnections}, 'provisioned' FROM tenant RETURNING id
    ), audited AS (
      ${audited(Prisma.sql`tenant`)} RETURNING id
    )
    SELECT ${TENANT_COLUMNS} FROM tenant, quota, change, audited`;
}

/**
 * The end of a provisioning, in one statement: the row ACTIVE, the kept credentials counted as
 * applied (their verifier dropped: PostgreSQL has it), and the audit event (`audited`, reading
 * from `tenant`). Returns the row (TENANT_COLUMNS).
 */
export function activateTenant(tenantId: string, audited: (from: Prisma.Sql) => Prisma.Sql): Prisma.Sql {
  return Prisma.sql`
    WITH tenant AS (
      UPDATE tenants SET status = 'ACTIVE', provision_step = 'CREDENTIALS', failed_step = NULL, last_error = NULL, updated_at = now()
       WHERE id = ${tenantId}::uuid
      RETURNING *
    ), applied AS (
      UPDATE credential_handoffs h SET applied_at = now(), verifier = NULL
        FROM tenant WHERE h.tenant_id = tenant.id AND h.purpose = 'PROVISION' AND h.applied_at IS NULL
    ), audited AS (
      ${audited(Prisma.sql`tenant`)} RETURNING id
    )
    SELECT ${TENANT_COLUMNS} FROM tenant, audited`;
}
