import type { Quota, QuotaChange } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsGrouped, rowsInOrder } from '../../platform/db/rows-in-order.js';

export type { Quota, QuotaChange };

/** The quotas and their history, as lists and lookups read them (changes happen in QuotaUpdates). */
export class QuotaStore {
  constructor(private readonly p: { db: ControlClient }) {}

  async byTenantIds(tenantIds: readonly string[]): Promise<(Quota | null)[]> {
    return rowsInOrder(tenantIds, await this.p.db.quota.findMany({ where: { tenantId: { in: [...tenantIds] } } }), (r) => r.tenantId);
  }

  /** Tenants and the connections promised to them, per cluster (deprovisioned tenants excluded). */
  async allocationsByClusterIds(clusterIds: readonly string[]): Promise<{ tenantCount: number; allocatedConnections: number }[]> {
    const rows = await this.p.db.$queryRaw<{ cluster_id: string; tenant_count: number; allocated: number }[]>`
      SELECT t.cluster_id::text AS cluster_id, count(*)::int AS tenant_count, coalesce(sum(q.max_connections), 0)::int AS allocated
      FROM tenants t LEFT JOIN quotas q ON q.tenant_id = t.id
      WHERE t.cluster_id::text = ANY(${[...clusterIds]}) AND t.status <> 'DEPROVISIONED'
      GROUP BY t.cluster_id`;
    return rowsInOrder(clusterIds, rows, (r) => r.cluster_id).map((r) => ({ tenantCount: r?.tenant_count ?? 0, allocatedConnections: r?.allocated ?? 0 }));
  }

  /**
   * The newest `first` quota changes of each tenant, newest first: one query for a whole page
   * of tenants (a window over quota_changes, served by its (tenant_id, at DESC) index).
   */
  async historyByTenantIds(tenantIds: readonly string[], first: number): Promise<QuotaChange[][]> {
    if (first <= 0 || tenantIds.length === 0) return tenantIds.map(() => []);
    const rows = await this.p.db.$queryRaw<QuotaChange[]>`
      SELECT id::text AS id, tenant_id::text AS "tenantId", at, actor, old_max_connections AS "oldMaxConnections",
             new_max_connections AS "newMaxConnections", reason
      FROM (SELECT qc.*, row_number() OVER (PARTITION BY qc.tenant_id ORDER BY qc.at DESC, qc.id DESC) AS n
            FROM quota_changes qc WHERE qc.tenant_id = ANY(${[...tenantIds]}::uuid[])) ranked
      WHERE n <= ${first}
      ORDER BY at DESC, id DESC`;
    return rowsGrouped(tenantIds, rows, (r) => r.tenantId);
  }
}
