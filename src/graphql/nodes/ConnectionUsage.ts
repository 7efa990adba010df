import { maskQuery } from '../../domain/usage/query-text.js';
import type { BackendSummary, RemovedTenant, TenantUsageSample } from '../../domain/usage/usage-sample.js';
import type { UsageBatchView } from '../../domain/usage/usage-service.js';
import { readUsageHistory } from '../../domain/usage/usage-history.js';
import { tenantsByIds } from '../../domain/tenants/tenant-queries.js';
import { sessionsOfRole } from '../../sql/activity.sql.js';
import type { SessionRow } from '../../domain/usage/usage-sample.js';
import { builder } from '../builder.js';
import { TenantRef } from './Tenant.js';

const StateCountRef = builder.objectRef<{ state: string; count: number }>('ConnectionStateCount').implement({
  fields: (t) => ({ state: t.exposeString('state'), count: t.exposeInt('count') }),
});

const BusyBackendRef = builder.objectRef<BackendSummary>('BusyBackend').implement({
  description: 'One of the longest-running non-idle sessions at the sample.',
  fields: (t) => ({
    pid: t.exposeInt('pid'),
    state: t.exposeString('state'),
    applicationName: t.exposeString('applicationName', { nullable: true }),
    durationSeconds: t.exposeFloat('durationSeconds'),
    query: t.exposeString('query', { nullable: true, description: 'At most 100 characters, literals masked.' }),
  }),
});

export const ConnectionUsageRef = builder.objectRef<TenantUsageSample>('ConnectionUsage').implement({
  description: 'A tenant\'s sessions against its quota, as of one pg_stat_activity sample.',
  fields: (t) => ({
    tenant: t.loadable({
      type: TenantRef,
      load: (ids: string[], ctx) => tenantsByIds(ctx.deps.db, ids).then((rows) => rows.map((r) => r ?? new Error('tenant not found'))),
      resolve: (u) => u.tenantId,
    }),
    tenantSlug: t.exposeString('tenantSlug'),
    current: t.exposeInt('current', { description: 'Sessions of the tenant\'s role.' }),
    max: t.exposeInt('max', { description: 'Its quota (the role\'s CONNECTION LIMIT).' }),
    usagePercent: t.exposeFloat('usagePercent'),
    peak24h: t.exposeInt('peak24h', { description: 'The most sessions seen in the last 24 hours (per-minute maxima; as sampled, the window reaches back to the start of the hour 24 hours ago).' }),
    byState: t.field({ type: [StateCountRef], resolve: (u) => u.byState }),
    pooled: t.exposeInt('pooled', {
      nullable: true,
      description: 'Of `current`, the sessions that are PgBouncer\'s server connections (from SHOW SERVERS); null without a pooler or when it did not answer.',
    }),
    poolerIdle: t.exposeInt('poolerIdle', {
      nullable: true,
      description:
        'Of `pooled`, those idle in the pool with no client attached: no client is using them, yet they count against the quota ' +
        'until PgBouncer closes them (server_idle_timeout). Null as `pooled`.',
    }),
    direct: t.exposeInt('direct', { nullable: true, description: 'Of `current`, the sessions opened directly, not through the pooler. Null as `pooled`.' }),
    busiest: t.field({ type: [BusyBackendRef], resolve: (u) => u.busiest }),
    sampledAt: t.field({ type: 'DateTime', description: 'The sample this value is current as of.', resolve: (u) => new Date(u.sampledAt) }),
  }),
});

export const ConnectionUsageBatchRef = builder.objectRef<UsageBatchView>('ConnectionUsageBatch').implement({
  description: 'One sample\'s news: the tenants whose usage changed or whose heartbeat fell in it, and those that left.',
  fields: (t) => ({
    sampledAt: t.field({ type: 'DateTime', resolve: (b) => new Date(b.sampledAt) }),
    usage: t.field({ type: [ConnectionUsageRef], resolve: (b) => b.tenants }),
    removedTenantSlugs: t.field({
      type: ['String'],
      description: 'Tenants no longer ACTIVE (suspended, deprovisioned): no more values will come for them.',
      resolve: (b) => b.removed.map((r: RemovedTenant) => r.tenantSlug),
    }),
  }),
});

interface ConnectionRow {
  pid: number;
  state: string;
  applicationName: string | null;
  backendStart: Date;
  queryStart: Date | null;
  durationSeconds: number;
  query: string | null;
}

const ConnectionRef = builder.objectRef<ConnectionRow>('Connection').implement({
  description: 'One session of the tenant\'s role (a row of pg_stat_activity).',
  fields: (t) => ({
    pid: t.exposeInt('pid'),
    state: t.exposeString('state'),
    applicationName: t.exposeString('applicationName', { nullable: true }),
    backendStart: t.expose('backendStart', { type: 'DateTime' }),
    queryStart: t.expose('queryStart', { type: 'DateTime', nullable: true }),
    durationSeconds: t.exposeFloat('durationSeconds', { description: 'Since the current or last query started (or the session, before any).' }),
    query: t.exposeString('query', { nullable: true, description: 'At most 100 characters, literals masked.' }),
  }),
});

const UsagePointRef = builder.objectRef<{ minute: Date; peakConnections: number; maxConnections: number }>('UsagePoint').implement({
  fields: (t) => ({
    minute: t.expose('minute', { type: 'DateTime' }),
    peakConnections: t.exposeInt('peakConnections', { description: 'The most sessions seen in that minute.' }),
    maxConnections: t.exposeInt('maxConnections', { description: 'The quota then.' }),
  }),
});

const UsageRangeEnum = builder.enumType('UsageRange', {
  values: { HOUR: { value: 3600 }, DAY: { value: 86_400 }, WEEK: { value: 7 * 86_400 } },
});

builder.objectFields(TenantRef, (t) => ({
  usage: t.loadable({
    type: ConnectionUsageRef,
    nullable: true,
    description: 'Sessions against the quota: the latest sample, or read now (one query per cluster for a whole page); null unless ACTIVE.',
    load: (ids: string[], ctx) => ctx.deps.usage.usageOf(ids),
    resolve: (tenant) => tenant.id,
  }),
  connections: t.field({
    type: [ConnectionRef],
    description: 'The tenant\'s sessions now, oldest first (read live).',
    resolve: async (tenant, _, ctx) => {
      if (tenant.status !== 'ACTIVE' && tenant.status !== 'SUSPENDED') return [];
      const cluster = await ctx.deps.clusters.get(tenant.clusterId);
      const { rows } = await cluster.query<SessionRow>(sessionsOfRole, [tenant.roleName]);
      return rows.map((r) => ({
        pid: r.pid,
        state: r.state,
        applicationName: r.application_name,
        backendStart: r.backend_start,
        queryStart: r.query_start,
        durationSeconds: Math.round(r.duration_seconds * 10) / 10,
        query: maskQuery(r.query),
      }));
    },
  }),
  usageHistory: t.field({
    type: [UsagePointRef],
    description:
      'Per-minute maxima for charts, oldest first, one point per minute from the start of the range (or the first sample) to now ' +
      '(kept USAGE_RETENTION_DAYS). Only minutes whose value changed are stored; the others carry the value before them.',
    args: { range: t.arg({ type: UsageRangeEnum, defaultValue: 86_400 }) },
    resolve: (tenant, { range }, ctx) => readUsageHistory(ctx.deps.db, tenant.id, range ?? 86_400),
  }),
}));
