import type { ClusterUsageValue } from '../usage-service.js';
import { ClusterStore } from '../../clusters/index.js';
import { builder } from '../../../graphql/builder.js';
import { ClusterRef } from '../../clusters/graphql/index.js';

export const ClusterUsageRef = builder.objectRef<ClusterUsageValue>('ClusterUsage').implement({
  description: 'A cluster\'s sessions as of one sample.',
  fields: (t) => ({
    cluster: t.loadable({
      type: ClusterRef,
      load: (ids: string[], ctx) => ctx.services.get(ClusterStore).byIds(ids).then((rows) => rows.map((r) => r ?? new Error('cluster not found'))),
      resolve: (u) => u.clusterId,
    }),
    current: t.exposeInt('current', { description: 'Client sessions on the whole server.' }),
    tenantConnections: t.exposeInt('tenantConnections', { description: 'Sessions of tenant roles.' }),
    maxConnections: t.exposeInt('maxConnections'),
    usagePercent: t.exposeFloat('usagePercent'),
    allocatedConnections: t.exposeInt('allocatedConnections'),
    tenantCount: t.exposeInt('tenantCount'),
    tenantsAtLimit: t.exposeInt('tenantsAtLimit'),
    sampledAt: t.field({ type: 'DateTime', resolve: (u) => new Date(u.sampledAt) }),
    degraded: t.boolean({
      description:
        'True when this is the last value heard, re-sent because this replica cannot hear the cluster\'s sampling leader ' +
        '(the event bus, Redis, is unreachable): sent at once when that happens, then every USAGE_HEARTBEAT_MS until it is back.',
      resolve: (u) => u.degraded === true,
    }),
  }),
});
