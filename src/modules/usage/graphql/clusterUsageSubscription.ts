import { GraphQLError } from 'graphql';
import { UsageService, type ClusterUsageValue } from '../usage-service.js';
import { ClusterStore } from '../../clusters/index.js';
import { builder } from '../../../graphql/builder.js';
import { localIdOf } from '../../../graphql/ids.js';
import { dropWhenTooSlow } from '../../../graphql/live-sessions.js';
import { ClusterUsageRef } from './ClusterUsage.js';

builder.subscriptionField('clusterUsage', (t) =>
  t.field({
    type: ClusterUsageRef,
    description: 'A cluster\'s sessions, per sample when they change, and at least every USAGE_HEARTBEAT_MS (admins only). clusterId is the Cluster\'s id.',
    authScopes: { admin: true },
    args: { clusterId: t.arg.id({ required: true, description: 'The Cluster\'s id.' }) },
    subscribe: async (_, { clusterId }, ctx) => {
      const id = localIdOf(String(clusterId), 'Cluster');
      const [cluster] = id ? await ctx.services.get(ClusterStore).byIds([id]) : [null];
      if (!cluster) throw new GraphQLError(`no cluster ${clusterId}`, { extensions: { code: 'NOT_FOUND' } });
      return ctx.services.get(UsageService).watchCluster(cluster.id, dropWhenTooSlow(ctx));
    },
    resolve: (sample: ClusterUsageValue) => sample,
  }),
);
