import type { Cluster } from '../../../generated/prisma/client.js';
import { allocationsByClusterIds, clustersByIds } from '../../tenants/tenant-queries.js';
import { clusterCapacity } from '../../quotas/cluster-capacity.js';
import { builder } from '../../../graphql/builder.js';
import { isUuid } from '../../../graphql/ids.js';

export const ClusterRef = builder.objectRef<Cluster>('Cluster');

/**
 * Server-wide figures are an admin's: a tenant key sees its cluster's name and version, and
 * null for these (they would tell it about other tenants and the server's headroom).
 */
export const ADMIN_FIGURE = { authScopes: { admin: true }, unauthorizedResolver: () => null } as const;

builder.node(ClusterRef, {
  description: 'A PostgreSQL server whose databases Tenantry manages.',
  id: { resolve: (c) => c.id },
  // Clusters are an admin's concern: to a tenant key, node(id) of a cluster is null.
  loadMany: async (ids, ctx) => {
    if (ctx.viewer?.role !== 'ADMIN') return ids.map(() => null);
    const rows = await clustersByIds(ctx.deps.db, ids.filter(isUuid));
    return ids.map((id) => rows.find((r) => r?.id === id) ?? null);
  },
  fields: (t) => ({
    name: t.exposeString('name'),
    serverVersion: t.string({
      nullable: true,
      description: 'The server\'s version; null when it cannot be reached.',
      resolve: async (c, _, ctx) => {
        const facts = await ctx.clusterFacts.load(c.id).catch(() => null);
        return facts?.serverVersion ?? null;
      },
    }),
    maxConnections: t.int({
      ...ADMIN_FIGURE,
      nullable: true,
      description: 'The server\'s max_connections; null when it cannot be reached, and for tenant keys.',
      resolve: async (c, _, ctx) => (await ctx.clusterFacts.load(c.id).catch(() => null))?.maxConnections ?? null,
    }),
    allocatedConnections: t.loadable({
      ...ADMIN_FIGURE,
      type: 'Int',
      nullable: true,
      description: 'Sum of the quotas of the tenants on this cluster (null for tenant keys).',
      load: (ids: string[], ctx) => allocationsByClusterIds(ctx.deps.db, ids).then((rows) => rows.map((r) => r.allocatedConnections)),
      resolve: (c) => c.id,
    }),
    tenantCount: t.loadable({
      ...ADMIN_FIGURE,
      type: 'Int',
      nullable: true,
      description: 'Tenants on this cluster, deprovisioned ones excepted (null for tenant keys).',
      load: (ids: string[], ctx) => allocationsByClusterIds(ctx.deps.db, ids).then((rows) => rows.map((r) => r.tenantCount)),
      resolve: (c) => c.id,
    }),
    capacity: t.int({
      ...ADMIN_FIGURE,
      nullable: true,
      description: 'Connections its tenants may be promised in all: (max_connections − reserved − Tenantry\'s own) × OVERCOMMIT_FACTOR (null for tenant keys).',
      resolve: async (c, _, ctx) => {
        const [cluster, facts] = await Promise.all([ctx.deps.clusters.get(c.id), ctx.clusterFacts.load(c.id).catch(() => null)]);
        return facts ? clusterCapacity(ctx.deps, cluster, facts).then((cap) => cap.capacity) : null;
      },
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryField('clusters', (t) =>
  t.field({
    type: [ClusterRef],
    description: 'The managed clusters (admins only).',
    authScopes: { admin: true },
    resolve: (_, __, ctx) => ctx.deps.db.cluster.findMany({ orderBy: { name: 'asc' } }),
  }),
);
