import { Failpoints } from '../../../platform/failpoints.js';
import { backendSummary, sessionsByRole, type BackendSummary, type RemovedTenant } from '../usage-sample.js';
import { UsageService, type UsageBatchView, type UsageValue } from '../usage-service.js';
import type { UsagePoint } from '../usage-history.js';
import { TenantStore } from '../../tenants/index.js';
import { builder } from '../../../graphql/builder.js';
import type { GraphQLContext } from '../../../graphql/context.js';
import { isUuid } from '../../../graphql/ids.js';
import { liveFieldCost, liveRead } from '../../../graphql/live-read.js';
import { TenantRef } from '../../tenants/graphql/index.js';

// pg_stat_activity.state, as its documentation lists it; activity.sql.ts reads a NULL state as 'unknown'.
const SESSION_STATES = {
  ACTIVE: { value: 'active', description: 'Running a query.' },
  IDLE: { value: 'idle', description: 'Waiting for a command from its client.' },
  IDLE_IN_TRANSACTION: { value: 'idle in transaction', description: 'In a transaction, but not running a query.' },
  IDLE_IN_TRANSACTION_ABORTED: { value: 'idle in transaction (aborted)', description: 'In a transaction that failed: waiting for its ROLLBACK.' },
  FASTPATH_FUNCTION_CALL: { value: 'fastpath function call', description: 'Running a fast-path function.' },
  DISABLED: { value: 'disabled', description: 'track_activities is off for this session.' },
  UNKNOWN: {
    value: 'unknown',
    description: 'PostgreSQL gave no state (a NULL in pg_stat_activity), or one newer than this server knows.',
  },
} as const;
type SessionStateValue = (typeof SESSION_STATES)[keyof typeof SESSION_STATES]['value'];
const KNOWN_STATES = new Set<string>(Object.values(SESSION_STATES).map((s) => s.value));

const SessionStateEnum = builder.enumType('SessionState', {
  description: 'What a PostgreSQL session is doing (pg_stat_activity.state).',
  values: SESSION_STATES,
});

/** A state this server does not know (a later PostgreSQL's) is UNKNOWN, never an error for the whole list. */
function sessionState(state: string): SessionStateValue {
  return (KNOWN_STATES.has(state) ? state : 'unknown') as SessionStateValue;
}

const StateCountRef = builder.objectRef<{ state: string; count: number }>('SessionStateCount').implement({
  description: 'How many of the tenant\'s sessions are in one state.',
  fields: (t) => ({
    state: t.field({ type: SessionStateEnum, description: 'A pg_stat_activity state.', resolve: (c) => sessionState(c.state) }),
    count: t.exposeInt('count', { description: 'Sessions in that state at the sample.' }),
  }),
});

const BusyBackendRef = builder.objectRef<BackendSummary>('BusyBackend').implement({
  description: 'One of the longest-running non-idle sessions at the sample.',
  fields: (t) => ({
    pid: t.exposeInt('pid', { description: 'The backend\'s process id (pg_stat_activity.pid).' }),
    state: t.field({ type: SessionStateEnum, description: 'What it was doing at the sample.', resolve: (b) => sessionState(b.state) }),
    applicationName: t.exposeString('applicationName', { nullable: true, description: 'The client\'s application_name; null when it set none.' }),
    durationSeconds: t.exposeFloat('durationSeconds', { description: 'Seconds since its current query started (or the session, before any), at the sample.' }),
    query: t.exposeString('query', { nullable: true, description: 'At most 100 characters, literals masked.' }),
  }),
});

export const ConnectionUsageRef = builder.objectRef<UsageValue>('ConnectionUsage');

builder.node(ConnectionUsageRef, {
  description:
    'A tenant\'s sessions against its quota, as of one pg_stat_activity sample. Its id is derived from the tenant\'s, the ' +
    'same in Tenant.usage, connectionUsage and connectionUsageBatch: a client cache keyed by __typename and id (Apollo, ' +
    'urql\'s graphcache) merges the streamed values into the tenant\'s usage.',
  id: { resolve: (u) => u.tenantId },
  // The tenant's current usage; null unless it is ACTIVE and the key may see it.
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.get(TenantStore).byIds(ids.filter(isUuid));
    const visible = ids.map((id) => rows.find((r) => r?.id === id && r.status === 'ACTIVE' && ctx.canSee(r))?.id ?? null);
    const values = await ctx.services.get(UsageService).usageOf(visible.filter((id): id is string => id !== null));
    return visible.map((id) => (id === null ? null : (values.find((v) => v?.tenantId === id) ?? null)));
  },
  fields: (t) => ({
    tenant: t.loadable({
      type: TenantRef,
      description: 'The tenant sampled.',
      load: (ids: string[], ctx) => ctx.services.get(TenantStore).byIds(ids).then((rows) => rows.map((r) => r ?? new Error('tenant not found'))),
      resolve: (u) => u.tenantId,
    }),
    tenantSlug: t.exposeString('tenantSlug', { description: 'The tenant\'s slug (without loading the tenant).' }),
    current: t.exposeInt('current', { description: 'Sessions of the tenant\'s role and of its read-only credentials (all count against the database\'s CONNECTION LIMIT, the quota).' }),
    max: t.exposeInt('max', { description: 'Its quota (the role\'s CONNECTION LIMIT).' }),
    usagePercent: t.exposeFloat('usagePercent', { description: 'current as a percent of max (0–100, one decimal; above 100 when over quota).' }),
    peak24h: t.exposeInt('peak24h', { description: 'The most sessions seen in the last 24 hours (per-minute maxima; as sampled, the window reaches back to the start of the hour 24 hours ago).' }),
    byState: t.field({ type: [StateCountRef], description: 'Its sessions counted by state (states with none left out).', resolve: (u) => u.byState }),
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
    busiest: t.field({ type: [BusyBackendRef], description: 'Its longest-running non-idle sessions, longest first.', resolve: (u) => u.busiest }),
    sampledAt: t.field({ type: 'DateTime', description: 'The sample this value is current as of.', resolve: (u) => new Date(u.sampledAt) }),
    degraded: t.boolean({
      description:
        'True when this is the last value heard, re-sent because this replica cannot hear the sampling leader of the tenant\'s ' +
        'cluster (the event bus, Redis, is unreachable): sent at once when that happens, then every USAGE_HEARTBEAT_MS until ' +
        'it is back, when the current value follows. Always false in Tenant.usage, which is then read live.',
      resolve: (u) => u.degraded === true,
    }),
  }),
});

export const ConnectionUsageBatchRef = builder.objectRef<UsageBatchView>('ConnectionUsageBatch').implement({
  description: 'One sample\'s news: the tenants whose usage changed or whose heartbeat fell in it, and those that left.',
  fields: (t) => ({
    sampledAt: t.field({ type: 'DateTime', description: 'When the sample was taken.', resolve: (b) => new Date(b.sampledAt) }),
    snapshot: t.boolean({
      description:
        'True for the opening message of a subscription that named its tenants (tenantSlugs): it lists every one of them, ' +
        'the ACTIVE ones in usage and the others in removedTenantSlugs, so a client can replace what it holds.',
      resolve: (b) => b.snapshot,
    }),
    degraded: t.boolean({
      description:
        'True while this replica cannot hear the sampling leader of some cluster (the event bus, Redis, is unreachable): ' +
        'usage from it is not arriving. A message with no usage says so at once, then every USAGE_HEARTBEAT_MS; once the bus ' +
        'is back, the current values of every tenant follow.',
      resolve: (b) => b.degraded,
    }),
    usage: t.field({ type: [ConnectionUsageRef], description: 'The tenants (of those the subscriber may see) whose usage changed or whose heartbeat fell in this sample.', resolve: (b) => b.tenants }),
    removedTenantSlugs: t.field({
      type: ['String'],
      description: 'Tenants no longer ACTIVE (suspended, deprovisioned): no more values will come for them.',
      resolve: (b) => b.removed.map((r: RemovedTenant) => r.tenantSlug),
    }),
  }),
});

type SessionRow = BackendSummary & { backendStart: Date; queryStart: Date | null };

const SessionRef = builder.objectRef<SessionRow>('Session').implement({
  description: 'One session of the tenant\'s role (a row of pg_stat_activity).',
  fields: (t) => ({
    pid: t.exposeInt('pid', { description: 'The backend\'s process id: what terminateConnection takes.' }),
    state: t.field({ type: SessionStateEnum, description: 'What it is doing now.', resolve: (r) => sessionState(r.state) }),
    applicationName: t.exposeString('applicationName', { nullable: true, description: 'The client\'s application_name; null when it set none.' }),
    backendStart: t.expose('backendStart', { type: 'DateTime', description: 'When the session began (pg_stat_activity.backend_start).' }),
    queryStart: t.expose('queryStart', { type: 'DateTime', nullable: true, description: 'When its current or last query began; null before any.' }),
    durationSeconds: t.exposeFloat('durationSeconds', { description: 'Since the current or last query started (or the session, before any).' }),
    query: t.exposeString('query', { nullable: true, description: 'At most 100 characters, literals masked.' }),
  }),
});

const UsagePointRef = builder.objectRef<{ minute: Date; peakConnections: number; maxConnections: number }>('UsagePoint').implement({
  description: 'One minute of a tenant\'s usage history.',
  fields: (t) => ({
    minuteStartAt: t.expose('minute', { type: 'DateTime', description: 'The start of the minute (UTC).' }),
    peakConnections: t.exposeInt('peakConnections', { description: 'The most sessions seen in that minute.' }),
    maxConnections: t.exposeInt('maxConnections', { description: 'The quota then.' }),
  }),
});

export const UsageRangeEnum = builder.enumType('UsageRange', {
  description: 'How far back a usage history reaches.',
  values: {
    HOUR: { value: 3600, description: 'The last hour (up to 60 points).' },
    DAY: { value: 86_400, description: 'The last 24 hours (up to 1,440 points).' },
    WEEK: { value: 7 * 86_400, description: 'The last 7 days (up to 10,080 points).' },
  },
});

/** The sessions of a page's tenants: one pg_stat_activity read per cluster, inside the live-read budget. */
function sessionsLoader(ctx: GraphQLContext) {
  return ctx.loader<string, SessionRow[]>('tenant-connections', null, async (keys) => {
    const byRole = new Map<string, SessionRow[]>();
    const wanted = keys.map((k) => k.split('/') as [string, string]);
    for (const clusterId of new Set(wanted.map(([c]) => c))) {
      const roles = wanted.filter(([c]) => c === clusterId).map(([, role]) => role);
      const rows = await liveRead(ctx, clusterId, async () => {
        await ctx.services.get(Failpoints).hit('live-read', { detail: 'connections', clusterId });
        return ctx.services.get(UsageService).sessionsOfRoles(clusterId, roles);
      });
      for (const [role, sessions] of sessionsByRole(rows)) {
        byRole.set(`${clusterId}/${role}`, sessions.map((r) => ({ ...backendSummary(r), backendStart: r.backend_start, queryStart: r.query_start })));
      }
    }
    return keys.map((k) => byRole.get(k) ?? []);
  });
}

/** Per-minute points of a page's tenants over one range: one query. */
function historyLoader(ctx: GraphQLContext, rangeSeconds: number) {
  return ctx.loader<string, UsagePoint[]>('tenant-usage-history', rangeSeconds, (tenantIds) => ctx.services.get(UsageService).readUsageHistories(tenantIds, rangeSeconds));
}

builder.objectFields(TenantRef, (t) => ({
  usage: t.loadable({
    type: ConnectionUsageRef,
    nullable: true,
    description: 'Sessions against the quota: the latest sample (for an idle tenant, as its cluster\'s leader recorded it), else read now (one query per cluster for a whole page); null unless ACTIVE.',
    // Usually the latest sample; when none is current it is read now, once per cluster for the page.
    complexity: (_args, ctx) => ({ field: Math.ceil(liveFieldCost(ctx) / 10), multiplier: 1 }),
    load: (ids: string[], ctx) => ctx.services.get(UsageService).usageOf(ids),
    resolve: (tenant) => tenant.id,
  }),
  connections: t.field({
    type: [SessionRef],
    description:
      'The tenant\'s sessions now, its read-only credentials\' included, oldest first (read live: one pg_stat_activity read per cluster for a page, within the ' +
      'live-read budget; costs GRAPHQL_LIVE_FIELD_COST).',
    complexity: (_args, ctx) => ({ field: liveFieldCost(ctx), multiplier: 10 }),
    resolve: async (tenant, _, ctx) => {
      if (tenant.status !== 'ACTIVE' && tenant.status !== 'SUSPENDED') return [];
      return sessionsLoader(ctx).load(`${tenant.clusterId}/${tenant.roleName}`);
    },
  }),
  usageHistory: t.field({
    type: [UsagePointRef],
    description:
      'Per-minute maxima for charts, oldest first, one point per minute from the start of the range (or the first sample) to now ' +
      '(kept USAGE_RETENTION_DAYS). Only minutes whose value changed are stored; the others carry the value before them.',
    args: { range: t.arg({ type: UsageRangeEnum, defaultValue: 86_400, description: 'How far back (default DAY).' }) },
    // One point per minute: a week is 10,080 of them.
    complexity: (args) => ({ field: 2, multiplier: Math.ceil((args.range ?? 86_400) / 6000) }),
    resolve: (tenant, { range }, ctx) => historyLoader(ctx, range ?? 86_400).load(tenant.id),
  }),
}));
