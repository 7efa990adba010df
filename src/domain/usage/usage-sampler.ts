import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { ClusterAdmin, ServerFacts } from '../../db/cluster-admin.js';
import type { ControlClient } from '../../db/control-client.js';
import type { Logger } from '../../logger.js';
import type { TenantryMetrics } from '../../metrics.js';
import { tenantSessions } from '../../sql/activity.sql.js';
import type { EventBus } from '../events/event-bus.js';
import { buildTenantSamples, percent, sampleSignature, type ClusterUsageSample, type SampledTenant, type SessionRow, type TenantUsageSample } from './usage-sample.js';

export interface SamplerTiming {
  /** USAGE_SAMPLE_MS: while someone watches. */
  intervalMs: number;
  /** While nobody watches: slower, still often enough for per-minute history. */
  idleIntervalMs: number;
  /** A payload is re-sent at least this often even when nothing changed. */
  heartbeatMs: number;
  retentionDays: number;
}

/**
 * Reads pg_stat_activity for one cluster once per interval and publishes one payload per
 * tenant (and one for the cluster), whatever the number of subscribers. Among replicas,
 * the one holding an advisory lock in the control database samples; the others retry the
 * lock every interval, so a dead leader (its session, and so its lock, gone) is replaced
 * within one interval.
 */
export class UsageSampler {
  /** The sampler's own counters: `activityQueries` is every pg_stat_activity read it made. */
  readonly stats = { activityQueries: 0, samples: 0, leader: false };
  private lockClient: pg.Client | null = null;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastDemandAt = 0;
  private readonly lastPublished = new Map<string, { signature: string; at: number }>();
  private peaks = new Map<string, number>();
  private peaksLoadedAt = 0;
  private lastPruneAt = 0;
  private facts: { at: number; value: ServerFacts } | undefined;
  private demand: AsyncIterator<unknown> | undefined;

  constructor(
    private readonly p: {
      db: ControlClient;
      controlUrl: string;
      cluster: ClusterAdmin;
      bus: EventBus;
      metrics: TenantryMetrics;
      logger: Logger;
      timing: SamplerTiming;
    },
  ) {}

  start(): void {
    const demand = this.p.bus.demand()[Symbol.asyncIterator]();
    this.demand = demand;
    void (async () => {
      for (let next = await demand.next(); !next.done; next = await demand.next()) this.onDemand();
    })();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.demand?.return?.();
    await this.releaseLead();
  }

  /** Someone watches: sample at full rate, and at once if we were idling. */
  private onDemand(): void {
    const wasIdle = !this.watched();
    this.lastDemandAt = Date.now();
    if (wasIdle && this.stats.leader && !this.stopped) this.schedule(0);
  }

  private watched(): boolean {
    return Date.now() - this.lastDemandAt < 3 * this.p.timing.intervalMs;
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.stats.leader) await this.tryLead();
      if (this.stats.leader) await this.sample();
    } catch (err) {
      this.p.logger.warn({ err, cluster: this.p.cluster.name }, 'usage sample failed');
    } finally {
      if (!this.stopped) this.schedule(this.stats.leader && !this.watched() ? this.p.timing.idleIntervalMs : this.p.timing.intervalMs);
    }
  }

  private async tryLead(): Promise<void> {
    if (!this.lockClient) {
      const client = new pg.Client({ connectionString: this.p.controlUrl, application_name: 'tenantry-sampler' });
      client.on('error', () => void this.releaseLead());
      await client.connect();
      this.lockClient = client;
    }
    const { rows } = await this.lockClient.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [`tenantry:sampler:${this.p.cluster.id}`]);
    if (rows[0]?.ok) {
      this.stats.leader = true;
      this.lastPublished.clear();
      this.peaksLoadedAt = 0;
      this.p.logger.info({ cluster: this.p.cluster.name }, 'sampling usage for this cluster (leader)');
    }
  }

  private async releaseLead(): Promise<void> {
    const client = this.lockClient;
    this.lockClient = null;
    this.stats.leader = false;
    await client?.end().catch(() => undefined); // ending the session releases the lock
  }

  /** One sample: one read of pg_stat_activity, one payload per tenant, history upserted. */
  async sample(): Promise<void> {
    const started = performance.now();
    const { db, cluster, bus, metrics } = this.p;
    const rows = await db.tenant.findMany({
      where: { clusterId: cluster.id, status: 'ACTIVE' },
      select: { id: true, slug: true, clusterId: true, roleName: true, quota: { select: { maxConnections: true } } },
    });
    const tenants: SampledTenant[] = rows.filter((r) => r.quota).map((r) => ({ id: r.id, slug: r.slug, clusterId: r.clusterId, roleName: r.roleName, maxConnections: r.quota!.maxConnections }));
    await this.refreshPeaks();

    const { rows: sessions } = await cluster.query<SessionRow & { role: string | null }>(tenantSessions);
    this.stats.activityQueries++;
    const sampledAt = new Date();
    const samples = buildTenantSamples(tenants, sessions.filter((s) => s.role !== null), sampledAt, this.peaks);
    // Peaks seen now count at once; the once-a-minute reload lets old ones age out of the 24 hours.
    for (const s of samples) this.peaks.set(s.tenantId, s.peak24h);
    const facts = await this.serverFacts();
    const tenantConnections = samples.reduce((n, s) => n + s.current, 0);
    const clusterSample: ClusterUsageSample = {
      clusterId: cluster.id,
      clusterName: cluster.name,
      current: sessions.length,
      tenantConnections,
      maxConnections: facts.maxConnections,
      usagePercent: percent(sessions.length, facts.maxConnections),
      allocatedConnections: tenants.reduce((n, t) => n + t.maxConnections, 0),
      tenantCount: tenants.length,
      tenantsAtLimit: samples.filter((s) => s.current >= s.max).length,
      sampledAt: sampledAt.toISOString(),
    };

    for (const s of samples) {
      if (this.isNews(`tenant:${s.tenantId}`, s)) bus.publishTenant(s);
      if (s.current >= s.max) metrics.tenantAtLimit.inc({ tenant: s.tenantSlug });
    }
    if (this.isNews(`cluster:${cluster.id}`, clusterSample)) bus.publishCluster(clusterSample);
    await this.record(samples, sampledAt);
    await this.pruneHourly();

    this.stats.samples++;
    metrics.samples.inc({ cluster: cluster.name });
    metrics.sampleDuration.observe({ cluster: cluster.name }, (performance.now() - started) / 1000);
  }

  /** Publish when the value changed, or when subscribers have heard nothing for a heartbeat. */
  private isNews(key: string, sample: TenantUsageSample | ClusterUsageSample): boolean {
    const signature = sampleSignature(sample);
    const last = this.lastPublished.get(key);
    const now = Date.now();
    if (last && last.signature === signature && now - last.at < this.p.timing.heartbeatMs) return false;
    this.lastPublished.set(key, { signature, at: now });
    return true;
  }

  /** The latest sample per tenant (for lists ordered by usage) and the per-minute maxima (for charts). */
  private async record(samples: TenantUsageSample[], sampledAt: Date): Promise<void> {
    if (samples.length === 0) return;
    const ids = samples.map((s) => s.tenantId);
    const current = samples.map((s) => s.current);
    const max = samples.map((s) => s.max);
    const pct = samples.map((s) => s.usagePercent);
    const states = samples.map((s) => JSON.stringify(s.byState));
    await this.p.db.$executeRaw`
      INSERT INTO tenant_usage (tenant_id, current, max_connections, usage_percent, by_state, sampled_at)
      SELECT u.id, u.current, u.max, u.pct, u.states, ${sampledAt}::timestamptz
      FROM unnest(${ids}::uuid[], ${current}::int[], ${max}::int[], ${pct}::float8[], ${states}::jsonb[]) AS u(id, current, max, pct, states)
      ON CONFLICT (tenant_id) DO UPDATE SET current = EXCLUDED.current, max_connections = EXCLUDED.max_connections,
        usage_percent = EXCLUDED.usage_percent, by_state = EXCLUDED.by_state, sampled_at = EXCLUDED.sampled_at`;
    await this.p.db.$executeRaw`
      INSERT INTO usage_minutes (tenant_id, minute, peak_connections, max_connections)
      SELECT u.id, date_trunc('minute', ${sampledAt}::timestamptz), u.current, u.max
      FROM unnest(${ids}::uuid[], ${current}::int[], ${max}::int[]) AS u(id, current, max)
      ON CONFLICT (tenant_id, minute) DO UPDATE SET peak_connections = GREATEST(usage_minutes.peak_connections, EXCLUDED.peak_connections),
        max_connections = EXCLUDED.max_connections`;
  }

  /** max_connections changes only with a server restart: read once a minute, not every sample. */
  private async serverFacts(): Promise<ServerFacts> {
    if (!this.facts || Date.now() - this.facts.at > 60_000) this.facts = { at: Date.now(), value: await this.p.cluster.facts() };
    return this.facts.value;
  }

  /** The 24-hour peaks, from the per-minute history, re-read once a minute. */
  private async refreshPeaks(): Promise<void> {
    if (Date.now() - this.peaksLoadedAt < 60_000) return;
    const rows = await this.p.db.usageMinute.groupBy({
      by: ['tenantId'],
      where: { minute: { gt: new Date(Date.now() - 24 * 3600_000) }, tenant: { clusterId: this.p.cluster.id } },
      _max: { peakConnections: true },
    });
    this.peaks = new Map(rows.map((r) => [r.tenantId, r._max.peakConnections ?? 0]));
    this.peaksLoadedAt = Date.now();
  }

  private async pruneHourly(): Promise<void> {
    if (Date.now() - this.lastPruneAt < 3600_000) return;
    this.lastPruneAt = Date.now();
    await pruneUsageHistory(this.p.db, this.p.timing.retentionDays);
  }
}

/** Drops per-minute history older than the retention (the leader runs it hourly). */
export async function pruneUsageHistory(db: ControlClient, retentionDays: number): Promise<number> {
  const { count } = await db.usageMinute.deleteMany({ where: { minute: { lt: new Date(Date.now() - retentionDays * 86_400_000) } } });
  return count;
}
