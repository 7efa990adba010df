import { builder } from '../../../graphql/builder.js';
import { TenantRef } from '../../tenants/graphql/index.js';
import { PoolSync, type Pool } from '../pool-sync.js';
import type { PoolMode, PoolStats } from '../pooler-driver.js';

const PoolStatusEnum = builder.enumType('PoolStatus', {
  description: 'Whether the pooler runs a tenant\'s pool as recorded.',
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
    clientsActive: t.exposeInt('clientsActive', { description: 'Client connections paired with a server connection (cl_active).' }),
    clientsWaiting: t.exposeInt('clientsWaiting', { description: 'Client connections waiting for a server connection (cl_waiting).' }),
    serversActive: t.exposeInt('serversActive', { description: 'Server connections in use by a client (sv_active).' }),
    serversIdle: t.exposeInt('serversIdle', { description: 'Server connections idle in the pool (sv_idle): they still count against the quota.' }),
    maxWaitSeconds: t.exposeFloat('maxWaitSeconds', { description: 'How long, in seconds, the oldest waiting client has waited (maxwait).' }),
  }),
});

const PoolModeEnum = builder.enumType('PoolMode', {
  description: 'When PgBouncer gives a client\'s server connection back to the pool (POOL_MODE).',
  values: {
    SESSION: { value: 'session', description: 'When the client disconnects: session state (prepared statements, SET, temporary tables) works as direct.' },
    TRANSACTION: { value: 'transaction', description: 'After each transaction: more clients per server connection, no session state across transactions.' },
  } as const,
});

export const PoolRef = builder.objectRef<Pool>('Pool').implement({
  description: 'The tenant\'s pool in the connection pooler: pool_size and max_db_connections follow the quota.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The database name clients use through the pooler.' }),
    mode: t.field({ type: PoolModeEnum, description: 'Its pool mode (POOL_MODE).', resolve: (p) => p.mode as PoolMode }),
    poolSize: t.exposeInt('poolSize', { description: 'Server connections per user (pool_size): the tenant\'s quota.' }),
    maxConnections: t.exposeInt('maxConnections', { description: 'Server connections to its database at most (max_db_connections): the tenant\'s quota.' }),
    status: t.field({ type: PoolStatusEnum, description: 'Whether the pooler runs it as recorded.', resolve: (p) => p.status }),
    lastSyncedAt: t.expose('lastSyncedAt', { type: 'DateTime', nullable: true, description: 'When the pooler was last shown to run it as recorded; null: never yet.' }),
    lastError: t.exposeString('lastError', { nullable: true, description: 'Why it was last not applied; null when it was.' }),
    stats: t.field({
      type: PoolStatsRef,
      nullable: true,
      description: 'Live numbers from the pooler (zeros until a client has used the pool); null when the PgBouncer that has it cannot be reached.',
      resolve: async (p, _, ctx) => (await ctx.poolStats())?.of(p.name) ?? null,
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
