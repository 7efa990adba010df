import type { Quota, QuotaChange } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsGrouped, rowsInOrder } from '../../platform/db/rows-in-order.js';
import type { Allocation } from './cluster-capacity.js';

export type { Quota, QuotaChange };

/** The quotas and their history, as lists and lookups read them (changes happen in QuotaUpdates). */
export class QuotaStore {
  constructor(private readonly p: { db: ControlClient }) {}

  async byTenantIds(tenantIds: readonly string[]): Promise<(Quota | null)[]> {
    return rowsInOrder(tenantIds, await this.p.db.quota.findMany({ where: { tenantId: { in: [...tenantIds] } } }), (r) => r.tenantId);
  }

  /** Tenants and the connections promised to them, per cluster (deprovisioned tenants excluded): the counters triggers keep. */
  async allocationsByClusterIds(clusterIds: readonly string[]): Promise<Allocation[]> {
    const rows = await this.p.db.clusterAllocation.findMany({ where: { clusterId: { in: [...clusterIds] } } });
    return rowsInOrder(clusterIds, rows, (r) => r.clusterId).map((r) => ({ tenantCount: r?.tenantCount ?? 0, allocatedConnections: r?.allocatedConnections ?? 0 }));
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
