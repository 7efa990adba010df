import { GraphQLError } from 'graphql';
import type { ClusterUsageValue } from '../../domain/usage/usage-service.js';
import { builder } from '../builder.js';
import { localIdOf } from '../ids.js';
import { dropWhenTooSlow } from '../live-sessions.js';
import { ClusterUsageRef } from '../nodes/ClusterUsage.js';

builder.subscriptionField('clusterUsage', (t) =>
  t.field({
    type: ClusterUsageRef,
    description: 'A cluster\'s sessions, per sample when they change, and at least every USAGE_HEARTBEAT_MS (admins only). clusterId is the Cluster\'s id.',
    authScopes: { admin: true },
    args: { clusterId: t.arg.id({ required: true }) },
    subscribe: async (_, { clusterId }, ctx) => {
      const id = localIdOf(String(clusterId), 'Cluster');
      const cluster = id ? await ctx.deps.db.cluster.findUnique({ where: { id } }) : null;
      if (!cluster) throw new GraphQLError(`no cluster ${clusterId}`, { extensions: { code: 'NOT_FOUND' } });
      return ctx.deps.usage.watchCluster(cluster.id, dropWhenTooSlow(ctx));
    },
    resolve: (sample: ClusterUsageValue) => sample,
  }),
);
