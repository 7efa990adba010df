import { createHash } from 'node:crypto';
import { maskQuery } from './query-text.js';
import { tenantRoleOf } from '../tenants/index.js';
import { pooledBackendKey } from '../pools/index.js';

/** One row of pg_stat_activity (role: null for a backend pg_stat_activity shows no user for). */
export interface SessionRow {
  role: string | null;
  pid: number;
  state: string;
  application_name: string | null;
  backend_start: Date;
  query_start: Date | null;
  query: string | null;
  duration_seconds: number;
}

export interface BackendSummary {
  pid: number;
  state: string;
  applicationName: string | null;
  durationSeconds: number;
  /** At most 100 characters, literals masked. */
  query: string | null;
}

/**
 * A tenant's sessions against its quota at one moment: an entry of a sample's batch
 * (plain JSON, so it travels through Redis unchanged).
 */
export interface TenantUsageSample {
  tenantId: string;
  tenantSlug: string;
  clusterId: string;
  current: number;
  max: number;
  usagePercent: number;
  peak24h: number;
  byState: { state: string; count: number }[];
  /** Sessions that are the pooler's server connections (null: no pooler, or it did not answer). */
  pooled: number | null;
  /** Of those, the ones idle in the pool with no client attached (null as above). */
  poolerIdle: number | null;
  /** Sessions opened directly, not through the pooler: current - pooled (null as above). */
  direct: number | null;
  /** The longest-running active sessions, longest first. */
  busiest: BackendSummary[];
  /** ISO 8601. */
  sampledAt: string;
}

export interface ClusterUsageSample {
  clusterId: string;
  clusterName: string;
  /** Client sessions on the whole server. */
  current: number;
  tenantConnections: number;
  maxConnections: number;
  usagePercent: number;
  allocatedConnections: number;
  tenantCount: number;
  tenantsAtLimit: number;
  sampledAt: string;
}

export interface SampledTenant {
  id: string;
  slug: string;
  clusterId: string;
  roleName: string;
  maxConnections: number;
}

/** A tenant that left a cluster's roster (no longer ACTIVE, or gone). */
export interface RemovedTenant {
  tenantId: string;
  tenantSlug: string;
  /** Its status now (SUSPENDED, DEPROVISIONING, …); null when its row is gone or moved to another cluster. */
  status: string | null;
}

/**
 * What the sampling leader publishes once per cluster per sample: the tenants whose usage
 * changed, plus those due a heartbeat; the tenants that left the roster; the cluster's
 * totals when they changed or are due. One message, whatever the fleet's size.
 */
export interface UsageBatch {
  clusterId: string;
  /** The leader's lease epoch: a replica ignores a batch older than one it already heard. */
  epoch: number;
  /** The replica that sampled (for logs and tests). */
  leader: string;
  sampledAt: string;
  tenants: TenantUsageSample[];
  removed: RemovedTenant[];
  cluster: ClusterUsageSample | null;
}

/** The pooler's server connections, by pooledBackendKey(role, pid): whether a client is attached to each. */
export type PooledBackends = ReadonlyMap<string, { clientAttached: boolean }>;

const BUSIEST = 3;

export function percent(current: number, max: number): number {
  return max > 0 ? Math.round((current / max) * 1000) / 10 : 0;
}

/**
 * Sessions grouped by the tenant role they count for (tenantRoleOf): a read-only role uses the
 * tenant's database, whose CONNECTION LIMIT is the quota, so its sessions are the tenant's.
 * Built once per read of pg_stat_activity.
 */
export function sessionsByRole(rows: readonly SessionRow[]): Map<string, SessionRow[]> {
  const byRole = new Map<string, SessionRow[]>();
  for (const row of rows) {
    // pg_stat_activity shows no user for some backends (and for other users' sessions when not privileged).
    if (row.role === null) continue;
    const role = tenantRoleOf(row.role);
    const list = byRole.get(role);
    if (list) list.push(row);
    else byRole.set(role, [row]);
  }
  return byRole;
}

const NO_SESSIONS: readonly SessionRow[] = [];

/** What the API shows of a session: its duration to a tenth of a second, its query masked. */
export function backendSummary(r: SessionRow): BackendSummary {
  return { pid: r.pid, state: r.state, applicationName: r.application_name, durationSeconds: Math.round(r.duration_seconds * 10) / 10, query: maskQuery(r.query) };
}

/**
 * Turns one read of pg_stat_activity into a payload per tenant. `pooled` is the pooler's
 * server connections when a pooler runs and answered (null otherwise).
 */
export function buildTenantSamples(
  tenants: readonly SampledTenant[],
  byRole: ReadonlyMap<string, readonly SessionRow[]>,
  sampledAt: Date,
  peaks: (tenantId: string) => number,
  pooled: PooledBackends | null = null,
): TenantUsageSample[] {
  const at = sampledAt.toISOString();
  return tenants.map((t) => {
    const mine = byRole.get(t.roleName) ?? NO_SESSIONS;
    const states = new Map<string, number>();
    let viaPooler = 0;
    let poolerIdle = 0;
    for (const r of mine) {
      states.set(r.state, (states.get(r.state) ?? 0) + 1);
      const server = r.role === null ? undefined : pooled?.get(pooledBackendKey(r.role, r.pid));
      if (server) {
        viaPooler++;
        if (!server.clientAttached) poolerIdle++;
      }
    }
    return {
      tenantId: t.id,
      tenantSlug: t.slug,
      clusterId: t.clusterId,
      current: mine.length,
      max: t.maxConnections,
      usagePercent: percent(mine.length, t.maxConnections),
      peak24h: Math.max(peaks(t.id), mine.length),
      byState: [...states].map(([state, count]) => ({ state, count })).sort((a, b) => a.state.localeCompare(b.state)),
      pooled: pooled ? viaPooler : null,
      poolerIdle: pooled ? poolerIdle : null,
      direct: pooled ? mine.length - viaPooler : null,
      busiest: mine
        .filter((r) => r.state !== 'idle')
        .sort((a, b) => b.duration_seconds - a.duration_seconds)
        .slice(0, BUSIEST)
        .map(backendSummary),
      sampledAt: at,
    };
  });
}

/**
 * Where in every heartbeat period a tenant's heartbeat falls (ms), from a hash of its id:
 * the fleet's heartbeats spread evenly over the period instead of arriving together.
 */
export function heartbeatPhase(tenantId: string, periodMs: number): number {
  return createHash('sha1').update(tenantId).digest().readUInt32BE(0) % periodMs;
}

/** Whether the window (from, to] holds the tenant's heartbeat instant of some period. */
export function heartbeatDue(phase: number, periodMs: number, fromMs: number, toMs: number): boolean {
  return Math.floor((toMs - phase) / periodMs) > Math.floor((fromMs - phase) / periodMs);
}

/** What decides whether a sample is news to subscribers (the time alone is not). */
export function sampleSignature(s: TenantUsageSample | ClusterUsageSample): string {
  if ('busiest' in s) {
    // Built by hand: it runs for every tenant on every sample. Durations grow every
    // sample; which sessions are busiest is what matters.
    const states = s.byState.map((b) => `${b.state}=${b.count}`).join(',');
    const busiest = s.busiest.map((b) => `${b.pid}:${b.state}:${b.query}`).join('\u0000');
    return `${s.tenantSlug}|${s.current}|${s.max}|${s.peak24h}|${s.pooled}|${s.poolerIdle}|${s.direct}|${states}|${busiest}`;
  }
  const { sampledAt: _ignored, ...rest } = s;
  return JSON.stringify(rest);
}
