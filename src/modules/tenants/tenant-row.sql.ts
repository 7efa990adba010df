import { Prisma } from '../../generated/prisma/client.js';

/**
 * A tenants row in Prisma's shape (model field names, uuids as text, the status as its enum's
 * name), for a statement that writes a tenant and returns it in the same round trip:
 * `WITH tenant AS (UPDATE tenants ... RETURNING *), ... SELECT ${TENANT_COLUMNS} FROM tenant`.
 * test/control-rows.test.ts holds it equal to what Prisma reads.
 */
export const TENANT_COLUMNS = Prisma.sql`tenant.id::text AS id, tenant.slug, tenant.display_name AS "displayName", tenant.status::text AS status,
  tenant.database_name AS "databaseName", tenant.role_name AS "roleName", tenant.cluster_id::text AS "clusterId",
  tenant.template_name AS "templateName", tenant.template_version AS "templateVersion", tenant.provision_step AS "provisionStep",
  tenant.failed_step AS "failedStep", tenant.last_error AS "lastError", tenant.created_at AS "createdAt", tenant.updated_at AS "updatedAt",
  tenant.deprovisioned_at AS "deprovisionedAt", tenant.secured_at AS "securedAt", tenant.placement, tenant.roster_xid AS "rosterXid"`;
