import { quotasByTenantIds, tenantsByIds } from '../../domain/tenants/tenant-queries.js';
import { readLiveUsage, type ConnectionUsage } from '../../domain/usage/live-usage.js';
import { builder } from '../builder.js';
import { TenantRef } from './Tenant.js';

const StateCountRef = builder.objectRef<{ state: string; count: number }>('ConnectionStateCount').implement({
  fields: (t) => ({ state: t.exposeString('state'), count: t.exposeInt('count') }),
});

export const ConnectionUsageRef = builder.objectRef<ConnectionUsage>('ConnectionUsage').implement({
  description: 'A tenant\'s sessions against its quota.',
  fields: (t) => ({
    tenant: t.loadable({ type: TenantRef, load: (ids: string[], ctx) => tenantsByIds(ctx.deps.db, ids).then((r) => r.map((x) => x ?? new Error('tenant not found'))), resolve: (u) => u.tenantId }),
    current: t.exposeInt('current', { description: 'Sessions of the tenant\'s role right now.' }),
    max: t.exposeInt('max', { description: 'Its quota (the role\'s CONNECTION LIMIT).' }),
    usagePercent: t.exposeFloat('usagePercent'),
    byState: t.field({ type: [StateCountRef], resolve: (u) => u.byState }),
    sampledAt: t.expose('sampledAt', { type: 'DateTime' }),
  }),
});

builder.objectField(TenantRef, 'usage', (t) =>
  t.loadable({
    type: ConnectionUsageRef,
    nullable: true,
    description: 'Sessions against the quota, read from pg_stat_activity (one query per cluster for a whole page); null unless ACTIVE.',
    load: async (ids: string[], ctx) => {
      const [tenants, quotas] = await Promise.all([tenantsByIds(ctx.deps.db, ids), quotasByTenantIds(ctx.deps.db, ids)]);
      const result = new Map<string, ConnectionUsage>();
      const byCluster = new Map<string, { tenantId: string; roleName: string; maxConnections: number }[]>();
      tenants.forEach((tenant, i) => {
        if (!tenant || tenant.status !== 'ACTIVE' || !quotas[i]) return;
        const list = byCluster.get(tenant.clusterId) ?? [];
        list.push({ tenantId: tenant.id, roleName: tenant.roleName, maxConnections: quotas[i]!.maxConnections });
        byCluster.set(tenant.clusterId, list);
      });
      for (const [clusterId, list] of byCluster) {
        for (const [id, usage] of await readLiveUsage(await ctx.deps.clusters.get(clusterId), list)) result.set(id, usage);
      }
      return ids.map((id) => result.get(id) ?? null);
    },
    resolve: (tenant) => tenant.id,
  }),
);
