import { builder } from '../../../graphql/builder.js';
import { TenantRef } from '../../tenants/graphql/index.js';
import { PoolSync, type Pool } from '../pool-sync.js';
import type { PoolStats } from '../pooler-driver.js';

const PoolStatusEnum = builder.enumType('PoolStatus', {
  values: {
    IN_SYNC: { description: 'The pooler was shown to run this pool as wanted (checked after each reload).' },
    PENDING: { description: 'Changed, not yet applied (the pooler was unreachable); the reconciler retries.' },
    DRIFTED: { description: 'The pooler was found to differ; the reconciler repairs it.' },
    ERROR: {
      description: 'Not applied: the pooler refused the configuration, its configuration file could not be written (retried until it can), or it is down; see the pool\'s lastError.',
    },
  },
});

const PoolStatsRef = builder.objectRef<PoolStats>('PoolStats').implement({
  description: 'The pooler\'s SHOW POOLS for this pool, summed over its users.',
  fields: (t) => ({
    clientsActive: t.exposeInt('clientsActive'),
    clientsWaiting: t.exposeInt('clientsWaiting'),
    serversActive: t.exposeInt('serversActive'),
    serversIdle: t.exposeInt('serversIdle'),
    maxWaitSeconds: t.exposeFloat('maxWaitSeconds'),
  }),
});

export const PoolRef = builder.objectRef<Pool>('Pool').implement({
  description: 'The tenant\'s pool in the connection pooler: pool_size and max_db_connections follow the quota.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The database name clients use through the pooler.' }),
    mode: t.exposeString('mode'),
    poolSize: t.exposeInt('poolSize'),
    maxConnections: t.exposeInt('maxConnections'),
    status: t.field({ type: PoolStatusEnum, resolve: (p) => p.status }),
    lastSyncedAt: t.expose('lastSyncedAt', { type: 'DateTime', nullable: true }),
    lastError: t.exposeString('lastError', { nullable: true }),
    stats: t.field({
      type: PoolStatsRef,
      nullable: true,
      description: 'Live numbers from the pooler (zeros until a client has used the pool); null when it cannot be reached.',
      resolve: async (p, _, ctx) => {
        const stats = await ctx.poolStats();
        return stats ? (stats.get(p.name) ?? { clientsActive: 0, clientsWaiting: 0, serversActive: 0, serversIdle: 0, maxWaitSeconds: 0 }) : null;
      },
    }),
  }),
});

builder.objectField(TenantRef, 'pool', (t) =>
  t.loadable({
    type: PoolRef,
    nullable: true,
    description: 'Null when no pooler is configured (POOLER=none) or the tenant is not active.',
    load: (ids: string[], ctx) => ctx.services.get(PoolSync).byTenantIds(ids),
    resolve: (tenant) => tenant.id,
  }),
);
