import type { ClusterAdmin } from '../../db/cluster-admin.js';
import { sessionsByRoleAndState } from '../../sql/activity.sql.js';

export interface ConnectionUsage {
  tenantId: string;
  current: number;
  max: number;
  /** current / max × 100, rounded to one decimal. */
  usagePercent: number;
  byState: { state: string; count: number }[];
  sampledAt: Date;
}

/** Sessions of many tenants on one cluster, read live with a single query. */
export async function readLiveUsage(
  cluster: ClusterAdmin,
  tenants: readonly { tenantId: string; roleName: string; maxConnections: number }[],
): Promise<Map<string, ConnectionUsage>> {
  const { rows } = await cluster.query<{ role: string; state: string; n: number }>(sessionsByRoleAndState, [tenants.map((t) => t.roleName)]);
  const sampledAt = new Date();
  return new Map(
    tenants.map((t) => {
      const mine = rows.filter((r) => r.role === t.roleName);
      const current = mine.reduce((sum, r) => sum + r.n, 0);
      return [
        t.tenantId,
        {
          tenantId: t.tenantId,
          current,
          max: t.maxConnections,
          usagePercent: t.maxConnections > 0 ? Math.round((current / t.maxConnections) * 1000) / 10 : 0,
          byState: mine.map((r) => ({ state: r.state, count: r.n })).sort((a, b) => a.state.localeCompare(b.state)),
          sampledAt,
        },
      ];
    }),
  );
}
