import type { ClusterUsageValue } from '../usage-service.js';
import { ClusterStore } from '../../clusters/index.js';
import { builder } from '../../../graphql/builder.js';
import { ClusterRef } from '../../clusters/graphql/index.js';

export const ClusterUsageRef = builder.objectRef<ClusterUsageValue>('ClusterUsage').implement({
  description: 'A cluster\'s sessions as of one sample.',
  fields: (t) => ({
    cluster: t.loadable({
      type: ClusterRef,
      description: 'The cluster sampled.',
      load: (ids: string[], ctx) => ctx.services.get(ClusterStore).byIds(ids).then((rows) => rows.map((r) => r ?? new Error('cluster not found'))),
      resolve: (u) => u.clusterId,
    }),
    current: t.exposeInt('current', { description: 'Client sessions on the whole server.' }),
    tenantConnections: t.exposeInt('tenantConnections', { description: 'Sessions of tenant roles.' }),
    maxConnections: t.exposeInt('maxConnections', { description: 'The server\'s max_connections.' }),
    usagePercent: t.exposeFloat('usagePercent', { description: 'current as a percent of maxConnections (0–100, one decimal).' }),
    allocatedConnections: t.exposeInt('allocatedConnections', { description: 'Connections promised: the sum of the quotas of its ACTIVE tenants.' }),
    tenantCount: t.exposeInt('tenantCount', { description: 'ACTIVE tenants sampled on it.' }),
    tenantsAtLimit: t.exposeInt('tenantsAtLimit', { description: 'Of those, how many have as many sessions as their quota allows (or more).' }),
    sampledAt: t.field({ type: 'DateTime', description: 'When the sample was taken.', resolve: (u) => new Date(u.sampledAt) }),
    degraded: t.boolean({
      description:
        'True when this is the last value heard, re-sent because this replica cannot hear the cluster\'s sampling leader ' +
        '(the event bus, Redis, is unreachable): sent at once when that happens, then every USAGE_HEARTBEAT_MS until it is back.',
      resolve: (u) => u.degraded === true,
    }),
  }),
});
