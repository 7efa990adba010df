import { ClusterStore, type Cluster } from '../cluster-store.js';
import { builder } from '../../../graphql/builder.js';
import { isUuid } from '../../../graphql/ids.js';

export const ClusterRef = builder.objectRef<Cluster>('Cluster');

/**
 * Server-wide figures are an admin's: a tenant key sees its cluster's name and version, and
 * null for these (they would tell it about other tenants and the server's headroom).
 */
export const ADMIN_FIGURE = { authScopes: { admin: true }, unauthorizedResolver: () => null } as const;

// allocatedConnections, tenantCount and capacity (quota figures) are added by the quotas module (quotas/graphql).
builder.node(ClusterRef, {
  description: 'A PostgreSQL server whose databases Tenantry manages.',
  id: { resolve: (c) => c.id },
  // Clusters are an admin's concern: to a tenant key, node(id) of a cluster is null.
  loadMany: async (ids, ctx) => {
    if (ctx.viewer?.role !== 'ADMIN') return ids.map(() => null);
    const rows = await ctx.services.get(ClusterStore).byIds(ids.filter(isUuid));
    return ids.map((id) => rows.find((r) => r?.id === id) ?? null);
  },
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Its name, unique among clusters.' }),
    serverVersion: t.string({
      nullable: true,
      description: 'The server\'s version; null when it cannot be reached.',
      resolve: async (c, _, ctx) => (await ctx.clusterFacts.load(c.id).catch(() => null))?.serverVersion ?? null,
    }),
    maxConnections: t.int({
      ...ADMIN_FIGURE,
      nullable: true,
      description: 'The server\'s max_connections; null when it cannot be reached, and for tenant keys.',
      resolve: async (c, _, ctx) => (await ctx.clusterFacts.load(c.id).catch(() => null))?.maxConnections ?? null,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When Tenantry started managing it.' }),
  }),
});

builder.queryField('clusters', (t) =>
  t.field({
    type: [ClusterRef],
    description: 'The managed clusters (admins only).',
    authScopes: { admin: true },
    resolve: (_, __, ctx) => ctx.services.get(ClusterStore).list(),
  }),
);
