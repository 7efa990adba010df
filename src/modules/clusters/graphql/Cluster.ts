import { ClusterStore, type Cluster } from '../cluster-store.js';
import { connectionUrlSource, moveReadiness, type ConnectionUrlSource } from '../cluster-administration.js';
import { holdsControlDatabase } from '../cluster-registry.js';
import { builder } from '../../../graphql/builder.js';
import { describedValues } from '../../../graphql/enum-values.js';
import { isUuid } from '../../../graphql/ids.js';
import type { GraphQLContext } from '../../../graphql/context.js';

export const ClusterRef = builder.objectRef<Cluster>('Cluster');

export const ClusterStatusEnum = builder.enumType('ClusterStatus', {
  description: 'Whether a cluster takes new tenants.',
  values: describedValues<Cluster['status']>({
    ACTIVE: 'Takes new tenants (placement may choose it).',
    CORDONED: 'Takes no new tenants (cordonCluster); its tenants stay and are served.',
    DRAINING: 'Its tenants are being moved away (drainCluster); takes no new tenants.',
  }),
});

const ConnectionUrlSourceEnum = builder.enumType('ConnectionUrlSource', {
  description: 'Where Tenantry finds a cluster\'s admin URL (the URL itself is never shown).',
  values: describedValues<ConnectionUrlSource>({
    ENV: 'An environment variable of Tenantry\'s process names it (connectionUrlEnv).',
    SEALED: 'Stored encrypted (AES-256-GCM) in the control database, opened with CLUSTER_SECRET_KEY.',
    CONTROL_SERVER: 'The server that holds the control database: DATABASE_URL.',
  }),
});

/** The cluster's live facts for this request (one read per cluster), or null when it cannot be reached. */
const liveFacts = (c: Cluster, ctx: GraphQLContext) => ctx.clusterFacts.load(c.id).catch(() => null);

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
      resolve: async (c, _, ctx) => (await liveFacts(c, ctx))?.serverVersion ?? null,
    }),
    maxConnections: t.int({
      ...ADMIN_FIGURE,
      nullable: true,
      description: 'The server\'s max_connections; null when it cannot be reached, and for tenant keys.',
      resolve: async (c, _, ctx) => (await ctx.clusterFacts.load(c.id).catch(() => null))?.maxConnections ?? null,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When Tenantry started managing it.' }),
    updatedAt: t.expose('updatedAt', { ...ADMIN_FIGURE, type: 'DateTime', nullable: true, description: 'When its record last changed (null for tenant keys).' }),
    status: t.field({ ...ADMIN_FIGURE, type: ClusterStatusEnum, nullable: true, description: 'Whether it takes new tenants (null for tenant keys).', resolve: (c) => c.status }),
    region: t.string({ ...ADMIN_FIGURE, nullable: true, description: 'Its region, as registered; null when none (and for tenant keys).', resolve: (c) => c.region }),
    labels: t.stringList({ ...ADMIN_FIGURE, nullable: true, description: 'Its labels, sorted (placement by labels picks clusters that have all of them); null for tenant keys.', resolve: (c) => c.labels }),
    maxTenants: t.int({ ...ADMIN_FIGURE, nullable: true, description: 'At most this many tenants (DEPROVISIONED ones excepted) are placed on it; null: no cap (and for tenant keys).', resolve: (c) => c.maxTenants }),
    holdsControlDatabase: t.boolean({ ...ADMIN_FIGURE, nullable: true, description: 'True for the server that holds the control database (it cannot be removed); null for tenant keys.', resolve: (c) => holdsControlDatabase(c) }),
    connectionUrlSource: t.field({ ...ADMIN_FIGURE, type: ConnectionUrlSourceEnum, nullable: true, description: 'Where its admin URL comes from (never the URL); null for tenant keys.', resolve: (c) => connectionUrlSource(c) }),
    connectionUrlEnv: t.string({ ...ADMIN_FIGURE, nullable: true, description: 'The environment variable that holds its admin URL, when connectionUrlSource is ENV; null otherwise.', resolve: (c) => c.connectionUrlEnv }),
    reachable: t.boolean({
      ...ADMIN_FIGURE,
      nullable: true,
      description: 'Whether the control plane could query it just now (read at most once per request; null for tenant keys).',
      resolve: async (c, _, ctx) => (await liveFacts(c, ctx)) !== null,
    }),
    unreachableReason: t.string({
      ...ADMIN_FIGURE,
      nullable: true,
      description: 'Why it could not be queried just now; null when it could (and for tenant keys).',
      resolve: (c, _, ctx) => ctx.clusterFacts.load(c.id).then(() => null, (err: Error) => err.message.slice(0, 500)),
    }),
    walLevel: t.string({ ...ADMIN_FIGURE, nullable: true, description: 'Its wal_level (ONLINE moves need `logical`); null when it cannot be reached.', resolve: async (c, _, ctx) => (await liveFacts(c, ctx))?.walLevel ?? null }),
    replicationSlotsFree: t.int({
      ...ADMIN_FIGURE,
      nullable: true,
      description: 'max_replication_slots minus the slots that exist (each ONLINE move uses one on its source); null when it cannot be reached.',
      resolve: async (c, _, ctx) => {
        const facts = await liveFacts(c, ctx);
        return facts ? moveReadiness(facts).replicationSlotsFree : null;
      },
    }),
    maxWalSenders: t.int({ ...ADMIN_FIGURE, nullable: true, description: 'Its max_wal_senders; null when it cannot be reached.', resolve: async (c, _, ctx) => (await liveFacts(c, ctx))?.maxWalSenders ?? null }),
    canTakeMoves: t.boolean({
      ...ADMIN_FIGURE,
      nullable: true,
      description: 'Whether it can be the source or target of an ONLINE move: wal_level logical, a free replication slot, max_wal_senders above 0. Null when it cannot be reached.',
      resolve: async (c, _, ctx) => {
        const facts = await liveFacts(c, ctx);
        return facts ? moveReadiness(facts).canTakeMoves : null;
      },
    }),
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
