import { maskQuery } from './query-text.js';

/** One row of pg_stat_activity for a tenant's role. */
export interface SessionRow {
  role: string;
  pid: number;
  state: string;
  application_name: string | null;
  backend_start: Date;
  query_start: Date | null;
  state_change: Date | null;
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
 * A tenant's sessions against its quota at one moment: the payload published once per
 * tenant per sample (plain JSON, so it travels through Redis unchanged).
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
  /** Sessions of tenant roles. */
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

const BUSIEST = 3;

export function percent(current: number, max: number): number {
  return max > 0 ? Math.round((current / max) * 1000) / 10 : 0;
}

/** Turns one read of pg_stat_activity into a payload per tenant. */
export function buildTenantSamples(tenants: readonly SampledTenant[], rows: readonly SessionRow[], sampledAt: Date, peaks: ReadonlyMap<string, number>): TenantUsageSample[] {
  const byRole = new Map<string, SessionRow[]>();
  for (const row of rows) byRole.set(row.role, [...(byRole.get(row.role) ?? []), row]);
  return tenants.map((t) => {
    const mine = byRole.get(t.roleName) ?? [];
    const states = new Map<string, number>();
    for (const r of mine) states.set(r.state, (states.get(r.state) ?? 0) + 1);
    return {
      tenantId: t.id,
      tenantSlug: t.slug,
      clusterId: t.clusterId,
      current: mine.length,
      max: t.maxConnections,
      usagePercent: percent(mine.length, t.maxConnections),
      peak24h: Math.max(peaks.get(t.id) ?? 0, mine.length),
      byState: [...states].map(([state, count]) => ({ state, count })).sort((a, b) => a.state.localeCompare(b.state)),
      busiest: mine
        .filter((r) => r.state !== 'idle')
        .sort((a, b) => b.duration_seconds - a.duration_seconds)
        .slice(0, BUSIEST)
        .map((r) => ({ pid: r.pid, state: r.state, applicationName: r.application_name, durationSeconds: Math.round(r.duration_seconds * 10) / 10, query: maskQuery(r.query) })),
      sampledAt: sampledAt.toISOString(),
    };
  });
}

/** What decides whether a sample is news to subscribers (the time alone is not). */
export function sampleSignature(s: TenantUsageSample | ClusterUsageSample): string {
  const { sampledAt: _ignored, ...rest } = s as TenantUsageSample;
  if ('busiest' in rest) {
    // Durations grow every sample; which sessions are busiest is what matters.
    return JSON.stringify({ ...rest, busiest: rest.busiest.map((b) => [b.pid, b.state, b.query]) });
  }
  return JSON.stringify(rest);
}
