import { decodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';
import type { ClusterUsageSample } from '../../domain/usage/usage-sample.js';
import { builder } from '../builder.js';
import { isUuid } from '../ids.js';
import { ClusterUsageRef } from '../nodes/ClusterUsage.js';

function clusterIdOf(id: string): string | null {
  if (isUuid(id)) return id;
  try {
    const decoded = decodeGlobalID(id);
    return decoded.typename === 'Cluster' && isUuid(decoded.id) ? decoded.id : null;
  } catch {
    return null;
  }
}

builder.subscriptionField('clusterUsage', (t) =>
  t.field({
    type: ClusterUsageRef,
    description: 'A cluster\'s sessions, per sample (admins only). clusterId is the Cluster\'s id.',
    authScopes: { admin: true },
    args: { clusterId: t.arg.id({ required: true }) },
    subscribe: async (_, { clusterId }, ctx) => {
      const id = clusterIdOf(String(clusterId));
      const cluster = id ? await ctx.deps.db.cluster.findUnique({ where: { id } }) : null;
      if (!cluster) throw new GraphQLError(`no cluster ${clusterId}`, { extensions: { code: 'NOT_FOUND' } });
      return ctx.deps.usage.watchCluster(cluster.id);
    },
    resolve: (sample: ClusterUsageSample) => sample,
  }),
);
