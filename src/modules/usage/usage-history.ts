import { Prisma } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { LeaseFence } from './sampling-lease.js';
import type { TenantUsageSample } from './usage-sample.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Hour slots for the 24-hour peak: the current hour and the 24 before it. */
const SLOTS = 25;

/** A row of usage_minutes: from `minute` on, until the next row, this was the per-minute maximum. */
export interface MinuteRow {
  tenantId: string;
  minute: number;
  peak: number;
  max: number;
}

interface TenantHistory {
  /** What tenant_usage holds for the tenant (a signature), null without a row. */
  usage: string | null;
  /** The tenant's newest usage_minutes row. */
  last: { minute: number; peak: number; max: number } | null;
  /** The minute being accumulated, and its maximum so far. */
  minute: number;
  running: number;
  /** Per hour (slot = hour % SLOTS): the step function's maximum in that hour. */
  hourOf: Float64Array;
  hourPeak: Int32Array;
}

function usageSignature(current: number, max: number, byState: readonly { state: string; count: number }[]): string {
  return `${current}/${max}/${byState.map((s) => `${s.state}:${s.count}`).join(',')}`;
}

/**
 * The hour a 24-hour peak is reckoned in (peak24h): the peak of a tenant that holds no sessions
 * changes only when this does, as the window moves on by the hour.
 */
export function peakHourOf(now: number): number {
  return Math.floor(now / HOUR);
}

/**
 * The sampling leader's view of what the control database holds for each tenant's usage,
 * so that a sample writes only what changed: tenant_usage when a tenant's value changes,
 * usage_minutes when a minute's maximum differs from the row before it (a step function
 * that readers forward-fill). An idle fleet writes nothing. It also keeps each tenant's
 * 24-hour peak, to the hour, from the same rows.
 */
export class UsageHistory {
  private readonly tenants = new Map<string, TenantHistory>();

  constructor(private readonly db: ControlClient) {}

  has(tenantId: string): boolean {
    return this.tenants.has(tenantId);
  }

  clear(): void {
    this.tenants.clear();
  }

  /** Reads what the control database holds for these tenants: a few statements per 1,000 tenants. */
  async load(tenantIds: readonly string[], now: number): Promise<void> {
    const since = new Date(now - DAY);
    const thisMinute = Math.floor(now / MINUTE) * MINUTE;
    for (let i = 0; i < tenantIds.length; i += 1000) {
      const ids = tenantIds.slice(i, i + 1000);
      const rows = await this.db.$queryRaw<{ tenant_id: string; current: number | null; max_connections: number | null; by_state: { state: string; count: number }[] | null; rows: [number, number, number][] }[]>`
        SELECT ids.id::text AS tenant_id, u.current, u.max_connections, u.by_state,
          coalesce((
            SELECT json_agg(json_build_array((extract(epoch FROM m.minute) * 1000)::float8, m.peak_connections, m.max_connections) ORDER BY m.minute)
            FROM usage_minutes m
            WHERE m.tenant_id = ids.id
              AND m.minute >= coalesce((SELECT max(c.minute) FROM usage_minutes c WHERE c.tenant_id = ids.id AND c.minute <= ${since}), '-infinity')
          ), '[]'::json) AS rows
        FROM unnest(${ids}::uuid[]) AS ids(id)
        LEFT JOIN tenant_usage u ON u.tenant_id = ids.id`;
      for (const r of rows) {
        const points = r.rows.map(([minute, peak, max]) => ({ minute, peak, max }));
        const last = points.at(-1) ?? null;
        // A minute already under way (another leader wrote it) keeps its maximum so far.
        const underWay = last?.minute === thisMinute;
        const state: TenantHistory = {
          usage: r.current === null ? null : usageSignature(r.current, r.max_connections!, r.by_state ?? []),
          last,
          minute: underWay ? thisMinute : -1,
          running: underWay ? last.peak : 0,
          hourOf: new Float64Array(SLOTS).fill(-1),
          hourPeak: new Int32Array(SLOTS),
        };
        foldHours(state, points, now);
        this.tenants.set(r.tenant_id, state);
      }
    }
  }

  /**
   * Whether the tenant's history is at 0: its latest minute row records no session (or it has
   * none). A sample with no session changes nothing for such a tenant until its 24-hour peak
   * moves on with the hour; one that is not at rest still has a 0 to record.
   */
  atRest(tenantId: string): boolean {
    const s = this.tenants.get(tenantId);
    return !s || !s.last || s.last.peak === 0;
  }

  /** The most sessions in the last 24 hours (to the hour), not counting the sample being taken. */
  peak24h(tenantId: string, now: number): number {
    const s = this.tenants.get(tenantId);
    if (!s) return 0;
    const hour = peakHourOf(now);
    let peak = s.last?.peak ?? 0; // the value in effect now
    for (let i = 0; i < SLOTS; i++) if (s.hourOf[i]! >= hour - 24) peak = Math.max(peak, s.hourPeak[i]!);
    return peak;
  }

  /**
   * Takes in one sample of a tenant (loaded before). Says whether tenant_usage must be
   * written and which usage_minutes row, if any; `before` is how the sample compares with
   * what tenant_usage held (a new leader publishes a tenant whose value moved meanwhile).
   */
  observe(sample: TenantUsageSample, now: number): { usage: boolean; before: 'none' | 'same' | 'different'; minute: MinuteRow | null } {
    const s = this.tenants.get(sample.tenantId)!;
    const thisMinute = Math.floor(now / MINUTE) * MINUTE;
    if (s.minute !== thisMinute) {
      s.minute = thisMinute;
      s.running = sample.current;
    } else {
      s.running = Math.max(s.running, sample.current);
    }
    const hour = peakHourOf(now);
    const slot = hour % SLOTS;
    if (s.hourOf[slot] !== hour) {
      s.hourOf[slot] = hour;
      s.hourPeak[slot] = s.last?.peak ?? 0; // the value in effect as the hour began
    }
    s.hourPeak[slot] = Math.max(s.hourPeak[slot]!, s.running);

    let minute: MinuteRow | null = null;
    if (!s.last || s.last.peak !== s.running || s.last.max !== sample.max) {
      minute = { tenantId: sample.tenantId, minute: thisMinute, peak: s.running, max: sample.max };
      s.last = { minute: thisMinute, peak: s.running, max: sample.max };
    }
    const signature = usageSignature(sample.current, sample.max, sample.byState);
    const before = s.usage === null ? 'none' : s.usage === signature ? 'same' : 'different';
    s.usage = signature;
    return { usage: before !== 'same', before, minute };
  }

  /** A tenant left the roster: its tenant_usage row goes, and its history steps to 0 (it holds no sessions). */
  removed(tenantId: string, now: number): MinuteRow | null {
    const s = this.tenants.get(tenantId);
    this.tenants.delete(tenantId);
    if (!s?.last || s.last.peak === 0) return null;
    const thisMinute = Math.floor(now / MINUTE) * MINUTE;
    // This minute's row keeps the sessions it saw; the 0 starts with the next one.
    const minute = s.last.minute >= thisMinute ? thisMinute + MINUTE : thisMinute;
    return { tenantId, minute, peak: 0, max: s.last.max };
  }

  /**
   * One statement, only when something changed, and only while `fence` is still the
   * current lease (a deposed leader's late write is a no-op). Returns the rows written and
   * whether the lease held.
   */
  async write(
    fence: LeaseFence,
    usage: readonly TenantUsageSample[],
    minutes: readonly MinuteRow[],
    removedIds: readonly string[],
    sampledAt: Date,
    clusterMinute: ClusterMinuteRow | null = null,
  ): Promise<{ rows: number; clusterRows: number; held: boolean }> {
    const cluster = clusterMinute ? [clusterMinute] : [];
    const [r] = await this.db.$queryRaw<{ rows: number; clusterRows: number; held: boolean }[]>`
      WITH fence AS (
        SELECT 1 FROM usage_leases
        WHERE cluster_id = ${fence.clusterId}::uuid AND holder = ${fence.holder} AND epoch = ${fence.epoch}::int AND expires_at > now()
      ), latest AS (
        INSERT INTO tenant_usage (tenant_id, current, max_connections, usage_percent, by_state, sampled_at)
        SELECT u.id, u.current, u.max, u.pct, u.states, ${sampledAt}::timestamptz
        FROM unnest(${usage.map((s) => s.tenantId)}::uuid[], ${usage.map((s) => s.current)}::int[], ${usage.map((s) => s.max)}::int[],
                    ${usage.map((s) => s.usagePercent)}::float8[], ${usage.map((s) => JSON.stringify(s.byState))}::jsonb[]) AS u(id, current, max, pct, states)
        WHERE EXISTS (SELECT 1 FROM fence)
        ON CONFLICT (tenant_id) DO UPDATE SET current = EXCLUDED.current, max_connections = EXCLUDED.max_connections,
          usage_percent = EXCLUDED.usage_percent, by_state = EXCLUDED.by_state, sampled_at = EXCLUDED.sampled_at
        RETURNING 1
      ), minutes AS (
        INSERT INTO usage_minutes (tenant_id, minute, peak_connections, max_connections)
        SELECT m.id, to_timestamp(m.minute / 1000.0), m.peak, m.max
        FROM unnest(${minutes.map((m) => m.tenantId)}::uuid[], ${minutes.map((m) => m.minute)}::float8[], ${minutes.map((m) => m.peak)}::int[],
                    ${minutes.map((m) => m.max)}::int[]) AS m(id, minute, peak, max)
        WHERE EXISTS (SELECT 1 FROM fence)
        ON CONFLICT (tenant_id, minute) DO UPDATE SET peak_connections = GREATEST(usage_minutes.peak_connections, EXCLUDED.peak_connections),
          max_connections = EXCLUDED.max_connections
        RETURNING 1
      ), gone AS (
        DELETE FROM tenant_usage WHERE tenant_id = ANY(${removedIds}::uuid[]) AND EXISTS (SELECT 1 FROM fence)
        RETURNING 1
      ), cluster_minute AS (
        INSERT INTO cluster_usage_minutes (cluster_id, minute, sessions, tenant_sessions, allocated_connections)
        SELECT ${fence.clusterId}::uuid, to_timestamp(m.minute / 1000.0), m.sessions, m.tenant_sessions, m.allocated
        FROM unnest(${cluster.map((c) => c.minute)}::float8[], ${cluster.map((c) => c.sessions)}::int[], ${cluster.map((c) => c.tenantSessions)}::int[],
                    ${cluster.map((c) => c.allocatedConnections)}::int[]) AS m(minute, sessions, tenant_sessions, allocated)
        WHERE EXISTS (SELECT 1 FROM fence)
        ON CONFLICT (cluster_id, minute) DO UPDATE SET sessions = GREATEST(cluster_usage_minutes.sessions, EXCLUDED.sessions),
          tenant_sessions = GREATEST(cluster_usage_minutes.tenant_sessions, EXCLUDED.tenant_sessions),
          allocated_connections = GREATEST(cluster_usage_minutes.allocated_connections, EXCLUDED.allocated_connections)
        RETURNING 1
      )
      SELECT ((SELECT count(*) FROM latest) + (SELECT count(*) FROM minutes) + (SELECT count(*) FROM gone))::int AS rows,
             (SELECT count(*) FROM cluster_minute)::int AS "clusterRows",
             EXISTS (SELECT 1 FROM fence) AS held`;
    return r!;
  }
}

/** A row of cluster_usage_minutes: from `minute` on, until the next row, these were the cluster's per-minute maxima. */
export interface ClusterMinuteRow {
  minute: number;
  sessions: number;
  tenantSessions: number;
  allocatedConnections: number;
}

type ClusterTotals = Omit<ClusterMinuteRow, 'minute'>;

const sameTotals = (a: ClusterTotals, b: ClusterTotals) =>
  a.sessions === b.sessions && a.tenantSessions === b.tenantSessions && a.allocatedConnections === b.allocatedConnections;

/**
 * The same step function for one cluster's totals (cluster_usage_minutes), kept by its
 * sampling leader: one row per minute at most, written only when a minute's maxima differ
 * from the row before, so the fleet chart reads clusters × changed minutes, never tenants.
 */
export class ClusterHistory {
  /** The newest row (null: none yet; undefined: not read since this replica became leader). */
  private last: ClusterMinuteRow | null | undefined;
  /** The minute being accumulated, and its maxima so far. */
  private running: ClusterMinuteRow | null = null;

  constructor(private readonly db: ControlClient, private readonly clusterId: string) {}

  get loaded(): boolean {
    return this.last !== undefined;
  }

  clear(): void {
    this.last = undefined;
    this.running = null;
  }

  async load(now: number): Promise<void> {
    const [row] = await this.db.$queryRaw<{ minute: Date; sessions: number; tenant_sessions: number; allocated_connections: number }[]>`
      SELECT minute, sessions, tenant_sessions, allocated_connections FROM cluster_usage_minutes
      WHERE cluster_id = ${this.clusterId}::uuid ORDER BY minute DESC LIMIT 1`;
    this.last = row ? { minute: row.minute.getTime(), sessions: row.sessions, tenantSessions: row.tenant_sessions, allocatedConnections: row.allocated_connections } : null;
    // A minute already under way (another leader wrote it) keeps its maxima so far.
    this.running = this.last?.minute === Math.floor(now / MINUTE) * MINUTE ? { ...this.last } : null;
  }

  /** Takes in one sample's totals; returns the row to write, if this minute's maxima moved away from the newest row. */
  observe(totals: ClusterTotals, now: number): ClusterMinuteRow | null {
    const thisMinute = Math.floor(now / MINUTE) * MINUTE;
    const r = this.running;
    this.running =
      r?.minute === thisMinute
        ? {
            minute: thisMinute,
            sessions: Math.max(r.sessions, totals.sessions),
            tenantSessions: Math.max(r.tenantSessions, totals.tenantSessions),
            allocatedConnections: Math.max(r.allocatedConnections, totals.allocatedConnections),
          }
        : { minute: thisMinute, ...totals };
    if (this.last && sameTotals(this.last, this.running)) return null;
    this.last = { ...this.running };
    return this.last;
  }
}

/** Fills the hour slots from usage_minutes rows (oldest first, starting with the one in effect 24 hours ago). */
function foldHours(s: TenantHistory, points: readonly { minute: number; peak: number }[], now: number): void {
  const hour = peakHourOf(now);
  let i = 0;
  let inEffect: number | null = null;
  for (let h = hour - 24; h <= hour; h++) {
    const start = h * HOUR;
    while (i < points.length && points[i]!.minute < start) inEffect = points[i++]!.peak;
    let peak = inEffect;
    for (let j = i; j < points.length && points[j]!.minute < start + HOUR; j++) peak = Math.max(peak ?? 0, points[j]!.peak);
    if (peak === null) continue;
    s.hourOf[h % SLOTS] = h;
    s.hourPeak[h % SLOTS] = peak;
  }
}

/**
 * The most sessions of the tenant whose id is `tenantId` (an SQL expression) in the last 24
 * hours, as usage_minutes has them: the minutes since, and the value in effect as they began.
 */
function peak24hOf(tenantId: Prisma.Sql): Prisma.Sql {
  const since = new Date(Date.now() - DAY);
  return Prisma.sql`GREATEST(
      (SELECT max(m.peak_connections) FROM usage_minutes m WHERE m.tenant_id = ${tenantId} AND m.minute > ${since}),
      (SELECT c.peak_connections FROM usage_minutes c WHERE c.tenant_id = ${tenantId} AND c.minute <= ${since} ORDER BY c.minute DESC LIMIT 1))`;
}

/** The 24-hour peak of a few tenants, read now (exact to the minute): for a value nobody sampled yet. */
export async function readPeaks24h(db: ControlClient, tenantIds: readonly string[]): Promise<Map<string, number>> {
  if (tenantIds.length === 0) return new Map();
  const rows = await db.$queryRaw<{ tenant_id: string; peak: number | null }[]>`
    SELECT ids.id::text AS tenant_id, ${peak24hOf(Prisma.sql`ids.id`)} AS peak
    FROM unnest(${[...tenantIds]}::uuid[]) AS ids(id)`;
  return new Map(rows.map((r) => [r.tenant_id, r.peak ?? 0]));
}

/** A tenant the leader last recorded with no session (tenant_usage), its quota now (as a live read has it), and its 24-hour peak. */
export interface IdleRecordedRow {
  tenant_id: string;
  slug: string;
  cluster_id: string;
  role_name: string;
  max_connections: number;
  sampled_at: Date;
  peak: number | null;
}

/**
 * The tenants of `tenantIds` that are ACTIVE and that the leader last recorded with no session
 * (one statement): what usageOf answers for them while their cluster's leader is heard.
 */
export async function readIdleRecorded(db: ControlClient, tenantIds: readonly string[]): Promise<IdleRecordedRow[]> {
  if (tenantIds.length === 0) return [];
  return db.$queryRaw<IdleRecordedRow[]>`
    SELECT t.id::text AS tenant_id, t.slug, t.cluster_id::text AS cluster_id, t.role_name, q.max_connections, u.sampled_at, ${peak24hOf(Prisma.sql`t.id`)} AS peak
    FROM tenant_usage u JOIN tenants t ON t.id = u.tenant_id JOIN quotas q ON q.tenant_id = u.tenant_id
    WHERE u.tenant_id = ANY(${[...tenantIds]}::uuid[]) AND u.current = 0 AND t.status = 'ACTIVE'`;
}

export interface UsagePoint {
  minute: Date;
  peakConnections: number;
  maxConnections: number;
}

/**
 * Per-minute maxima over the last `rangeSeconds`, one point per minute from the range's
 * start (or the tenant's first row) to now: usage_minutes holds only the minutes whose
 * value changed, and each row holds until the next one.
 */
export async function readUsageHistory(db: ControlClient, tenantId: string, rangeSeconds: number, now = Date.now()): Promise<UsagePoint[]> {
  return (await readUsageHistories(db, [tenantId], rangeSeconds, now))[0]!;
}

/** The same for many tenants in one query (a page of tenants asking for their charts). */
export async function readUsageHistories(db: ControlClient, tenantIds: readonly string[], rangeSeconds: number, now = Date.now()): Promise<UsagePoint[][]> {
  const start = Math.ceil((now - rangeSeconds * 1000) / MINUTE) * MINUTE;
  const end = Math.floor(now / MINUTE) * MINUTE;
  const rows = await db.$queryRaw<{ tenant_id: string; minute: Date; peak_connections: number; max_connections: number }[]>`
    SELECT u.tenant_id::text AS tenant_id, u.minute, u.peak_connections, u.max_connections FROM usage_minutes u
    WHERE u.tenant_id = ANY(${[...tenantIds]}::uuid[]) AND u.minute <= ${new Date(end)}
      AND u.minute >= coalesce((SELECT max(c.minute) FROM usage_minutes c WHERE c.tenant_id = u.tenant_id AND c.minute <= ${new Date(start)}), ${new Date(start)})
    ORDER BY u.tenant_id, u.minute`;
  return tenantIds.map((tenantId) => {
    const mine = rows.filter((r) => r.tenant_id === tenantId);
    const points: UsagePoint[] = [];
    let i = 0;
    let current: (typeof mine)[number] | undefined;
    // A row holds from its minute until the next one (history is written only when the value changes).
    for (let m = start; m <= end; m += MINUTE) {
      while (i < mine.length && mine[i]!.minute.getTime() <= m) current = mine[i++];
      if (current) points.push({ minute: new Date(m), peakConnections: current.peak_connections, maxConnections: current.max_connections });
    }
    return points;
  });
}

/**
 * Drops per-minute history older than the retention (the leader runs it hourly), except
 * each tenant's newest row from before the cut: it holds the value at the window's start.
 */
export async function pruneUsageHistory(db: ControlClient, retentionDays: number): Promise<number> {
  const cutoff = new Date(Date.now() - retentionDays * DAY);
  const tenants = await db.$executeRaw`
    DELETE FROM usage_minutes u
    WHERE u.minute < ${cutoff}
      AND EXISTS (SELECT 1 FROM usage_minutes n WHERE n.tenant_id = u.tenant_id AND n.minute > u.minute AND n.minute <= ${cutoff})`;
  const clusters = await db.$executeRaw`
    DELETE FROM cluster_usage_minutes u
    WHERE u.minute < ${cutoff}
      AND EXISTS (SELECT 1 FROM cluster_usage_minutes n WHERE n.cluster_id = u.cluster_id AND n.minute > u.minute AND n.minute <= ${cutoff})`;
  return tenants + clusters;
}

export interface FleetUsagePoint {
  minute: Date;
  sessions: number;
  tenantSessions: number;
  allocatedConnections: number;
}

/**
 * The clusters' per-minute maxima over the last `rangeSeconds`, summed over the clusters (or
 * one cluster's), one point per minute from the range's start (or the first row) to now: each
 * cluster's row holds until its next one. Reads clusters × changed minutes, whatever the fleet's size.
 */
export async function readFleetUsageHistory(db: ControlClient, rangeSeconds: number, clusterId: string | null, now = Date.now()): Promise<FleetUsagePoint[]> {
  const start = Math.ceil((now - rangeSeconds * 1000) / MINUTE) * MINUTE;
  const end = Math.floor(now / MINUTE) * MINUTE;
  const rows = await db.$queryRaw<{ cluster_id: string; minute: Date; sessions: number; tenant_sessions: number; allocated_connections: number }[]>`
    SELECT c.cluster_id::text AS cluster_id, c.minute, c.sessions, c.tenant_sessions, c.allocated_connections FROM cluster_usage_minutes c
    WHERE (${clusterId}::uuid IS NULL OR c.cluster_id = ${clusterId}::uuid) AND c.minute <= ${new Date(end)}
      AND c.minute >= coalesce((SELECT max(p.minute) FROM cluster_usage_minutes p WHERE p.cluster_id = c.cluster_id AND p.minute <= ${new Date(start)}), ${new Date(start)})
    ORDER BY c.minute`;
  const current = new Map<string, (typeof rows)[number]>();
  const points: FleetUsagePoint[] = [];
  let i = 0;
  for (let m = start; m <= end; m += MINUTE) {
    while (i < rows.length && rows[i]!.minute.getTime() <= m) current.set(rows[i]!.cluster_id, rows[i++]!);
    if (current.size === 0) continue;
    const point = { minute: new Date(m), sessions: 0, tenantSessions: 0, allocatedConnections: 0 };
    for (const r of current.values()) {
      point.sessions += r.sessions;
      point.tenantSessions += r.tenant_sessions;
      point.allocatedConnections += r.allocated_connections;
    }
    points.push(point);
  }
  return points;
}
