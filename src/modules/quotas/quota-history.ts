import type { ControlClient } from '../../platform/db/control-client.js';
import type { QuotaChange } from '../../generated/prisma/client.js';

/**
 * The newest `first` quota changes of each tenant, newest first: one query for a whole page
 * of tenants (a window over quota_changes, served by its (tenant_id, at DESC) index).
 */
export async function quotaHistoryByTenantIds(db: ControlClient, tenantIds: readonly string[], first: number): Promise<QuotaChange[][]> {
  if (first <= 0 || tenantIds.length === 0) return tenantIds.map(() => []);
  const rows = await db.$queryRaw<QuotaChange[]>`
    SELECT id::text AS id, tenant_id::text AS "tenantId", at, actor, old_max_connections AS "oldMaxConnections",
           new_max_connections AS "newMaxConnections", reason
    FROM (SELECT qc.*, row_number() OVER (PARTITION BY qc.tenant_id ORDER BY qc.at DESC, qc.id DESC) AS n
          FROM quota_changes qc WHERE qc.tenant_id = ANY(${[...tenantIds]}::uuid[])) ranked
    WHERE n <= ${first}
    ORDER BY at DESC, id DESC`;
  return tenantIds.map((id) => rows.filter((r) => r.tenantId === id));
}
