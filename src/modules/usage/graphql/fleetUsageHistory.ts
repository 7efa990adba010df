import { GraphQLError } from 'graphql';
import { ClusterStore } from '../../clusters/index.js';
import { UsageService } from '../usage-service.js';
import type { FleetUsagePoint } from '../usage-history.js';
import { builder } from '../../../graphql/builder.js';
import { localIdOf } from '../../../graphql/ids.js';
import { UsageRangeEnum } from './ConnectionUsage.js';

const FleetUsagePointRef = builder.objectRef<FleetUsagePoint>('FleetUsagePoint').implement({
  description: 'One minute of the fleet\'s (or one cluster\'s) sessions: each figure is the most seen in that minute, summed over the clusters.',
  fields: (t) => ({
    minuteStartAt: t.expose('minute', { type: 'DateTime', description: 'The start of the minute (UTC).' }),
    sessions: t.exposeInt('sessions', { description: 'Client sessions on the servers (pg_stat_activity), tenants\' or not.' }),
    tenantSessions: t.exposeInt('tenantSessions', { description: 'Of those, sessions of the tenants\' roles.' }),
    allocatedConnections: t.exposeInt('allocatedConnections', { description: 'The sum of the ACTIVE tenants\' quotas (max connections) then.' }),
  }),
});

builder.queryField('fleetUsageHistory', (t) =>
  t.field({
    type: [FleetUsagePointRef],
    description:
      'Per-minute sessions for the fleet chart, oldest first, one point per minute from the start of the range (or the first sample) to now ' +
      '(kept USAGE_RETENTION_DAYS), summed over the clusters unless clusterId names one (admins only). Recorded per cluster by its sampling ' +
      'leader, only for minutes whose values changed; the others carry the value before them.',
    authScopes: { admin: true },
    args: {
      range: t.arg({ type: UsageRangeEnum, defaultValue: 86_400, description: 'How far back (default DAY).' }),
      clusterId: t.arg.id({ required: false, description: 'Only this Cluster (its id); default: every cluster, summed.' }),
    },
    // One point per minute: a week is 10,080 of them.
    complexity: (args) => ({ field: 2, multiplier: Math.ceil((args.range ?? 86_400) / 6000) }),
    resolve: async (_, { range, clusterId }, ctx) => {
      let id: string | null = null;
      if (clusterId != null) {
        const local = localIdOf(String(clusterId), 'Cluster');
        const [cluster] = local ? await ctx.services.get(ClusterStore).byIds([local]) : [null];
        if (!cluster) throw new GraphQLError(`no cluster ${clusterId}`, { extensions: { code: 'NOT_FOUND' } });
        id = cluster.id;
      }
      return ctx.services.get(UsageService).readFleetUsageHistory(range ?? 86_400, id);
    },
  }),
);
