import { performance } from 'node:perf_hooks';
import type { ClusterAdmin, ServerFacts } from '../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { Logger } from '../../platform/logger.js';
import type { TenantryMetrics } from '../../platform/metrics.js';
import { tenantSessions } from './activity.sql.js';
import type { EventBus } from '../../platform/events/event-bus.js';
import { PeriodicTask } from '../../platform/periodic-task.js';
import { SamplingLease } from './sampling-lease.js';
import { TenantRoster, type RosterEntry } from './tenant-roster.js';
import { ClusterHistory, peakHourOf, pruneUsageHistory, UsageHistory, type MinuteRow } from './usage-history.js';
import {
  buildTenantSamples,
  heartbeatDue,
  percent,
  sampleSignature,
  sessionsByRole,
  type ClusterUsageSample,
  type PooledBackends,
  type SessionRow,
  type TenantUsageSample,
} from './usage-sample.js';

/** Where a sampler reads the pooler's server connections (UsageService shares one read between clusters). */
export interface PooledBackendsReader {
  serverBackends(): Promise<PooledBackends>;
}

export interface SamplerTiming {
  /** USAGE_SAMPLE_MS: while someone watches. */
  intervalMs: number;
  /** While nobody watches: slower, still often enough for per-minute history. */
  idleIntervalMs: number;
  /** While anyone watches, a tenant is re-sent at least this often even when nothing changed. */
  heartbeatMs: number;
  retentionDays: number;
  /** USAGE_LEASE_MS: how long a silent leader keeps its lease. */
  leaseMs: number;
}

/** A full read of the roster this often catches what the change stamps cannot (a row deleted by hand). */
const ROSTER_FULL_REFRESH_MS = 10 * 60_000;

/**
 * Samples one cluster while this replica holds the cluster's sampling lease: one read of
 * pg_stat_activity per sample (and one SHOW SERVERS when a pooler runs), whatever the
 * number of tenants or subscribers, and one bus message per sample carrying only the
 * tenants whose usage changed or whose heartbeat is due. What it reads from and writes to
 * the control database is proportional to what changed too: the tenant roster is read
 * incrementally, history is written only for tenants whose values moved.
 *
 * Every interval, leader or not, it tries the lease (see SamplingLease): a follower takes
 * over within USAGE_LEASE_MS of a leader going silent, and a leader renews the lease right
 * before it publishes, so a leader that was frozen past its lease publishes nothing.
 */
export class UsageSampler {
  /** The sampler's own counters: `activityQueries` is every pg_stat_activity read it made. */
  readonly stats = { activityQueries: 0, poolerReads: 0, samples: 0, leader: false, batches: 0, historyRows: 0, clusterHistoryRows: 0, resyncs: 0, tenantsExamined: 0 };
  readonly lease: SamplingLease;
  readonly roster: TenantRoster;
  private readonly history: UsageHistory;
  private readonly clusterHistory: ClusterHistory;
  /** One tick per USAGE_SAMPLE_MS; a kick (demand after idling, a resync) runs one at once, or right after the one under way. */
  private readonly ticks: PeriodicTask;
  private stopped = false;
  private lastDemandAt = 0;
  private lastSampleAt = 0;
  /** Per tenant: the signature of what was last published. */
  private readonly published = new Map<string, string>();
  /** Per tenant: the connections and quota last put in this replica's gauges. */
  private readonly gauged = new Map<string, string>();
  /** The tenants that held sessions when last examined, or whose history has yet to record their 0: the next sample looks at them again. */
  private readonly active = new Set<string>();
  /** The peak hour (peakHourOf) in which every tenant was last examined. */
  private examinedAllIn = -1;
  private clusterPublished: { signature: string; at: number } | undefined;
  private lastPruneAt = 0;
  private facts: { at: number; value: ServerFacts } | undefined;
  private poolerFailing = false;
  private stopListening: (() => void)[] = [];
  /**
   * Requests for everything again (a replica's link to the others came back), and how many
   * of them a published sample answered: while fewer, the next sample publishes every tenant.
   */
  private resyncs = { requested: 0, answered: 0 };

  /** The cluster it samples, through this admin connection (a new one after the cluster's URL changed). */
  get cluster(): ClusterAdmin {
    return this.p.cluster;
  }

  constructor(
    private readonly p: {
      db: ControlClient;
      cluster: ClusterAdmin;
      /** The pooler's server connections (null without a pooler). */
      pooler: () => PooledBackendsReader | null;
      bus: EventBus;
      metrics: TenantryMetrics;
      logger: Logger;
      timing: SamplerTiming;
      /** This replica's id: the lease holder. */
      replica: string;
    },
  ) {
    this.lease = new SamplingLease({ db: p.db, clusterId: p.cluster.id, holder: p.replica, ttlMs: p.timing.leaseMs });
    this.roster = new TenantRoster({ db: p.db, clusterId: p.cluster.id, heartbeatMs: p.timing.heartbeatMs, fullRefreshMs: ROSTER_FULL_REFRESH_MS });
    this.history = new UsageHistory(p.db);
    this.clusterHistory = new ClusterHistory(p.db, p.cluster.id);
    this.ticks = new PeriodicTask({ name: `usage sampler of ${p.cluster.name}`, intervalMs: p.timing.intervalMs, run: () => this.tick(), logger: p.logger });
  }

  start(): void {
    this.stopListening.push(this.p.bus.onDemand(() => this.onDemand()), this.p.bus.onResync(() => this.onResync()));
    this.ticks.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const stop of this.stopListening.splice(0)) stop();
    await this.ticks.stop();
    if (this.stats.leader) await this.lease.release().catch((err) => this.p.logger.warn({ err }, 'could not release the sampling lease'));
    this.setLeader(false);
  }

  /** Someone watches: sample at full rate, and at once if we were idling. */
  private onDemand(): void {
    const wasIdle = !this.watched();
    this.lastDemandAt = Date.now();
    if (wasIdle && this.stats.leader && !this.stopped) void this.ticks.runNow();
  }

  /** Someone missed samples: publish every tenant, at once. */
  private onResync(): void {
    this.resyncs.requested++;
    if (this.stats.leader && !this.stopped) void this.ticks.runNow();
  }

  private watched(): boolean {
    return Date.now() - this.lastDemandAt < 3 * this.p.timing.intervalMs;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.stats.leader) {
        if (!(await this.lease.acquireOrRenew())) return;
        this.forget();
        this.setLeader(true);
        this.p.logger.info({ cluster: this.p.cluster.name, epoch: this.lease.epoch }, 'sampling usage for this cluster (leader)');
      }
      const due = this.lastSampleAt === 0 || this.resyncs.requested > this.resyncs.answered || this.watched() || Date.now() - this.lastSampleAt >= this.p.timing.idleIntervalMs;
      if (due) await this.sample();
      else if (!(await this.lease.acquireOrRenew())) this.stepDown('its lease was taken');
    } catch (err) {
      this.p.logger.warn({ err, cluster: this.p.cluster.name }, 'usage sample failed');
      // What this replica believes was written may not have been: start again from the database.
      if (this.stats.leader) this.forget();
    }
  }

  private stepDown(why: string): void {
    this.lease.drop();
    this.forget();
    this.setLeader(false);
    this.p.logger.warn({ cluster: this.p.cluster.name, why }, 'no longer sampling usage for this cluster');
  }

  private setLeader(leader: boolean): void {
    this.stats.leader = leader;
    this.p.metrics.samplerLeader.set({ cluster: this.p.cluster.name }, leader ? 1 : 0);
  }

  /** Back to knowing nothing: the next sample reads the roster and the history state again. */
  private forget(): void {
    this.roster.reset();
    this.history.clear();
    this.clusterHistory.clear();
    this.published.clear();
    this.active.clear();
    this.examinedAllIn = -1;
    this.clusterPublished = undefined;
    this.lastSampleAt = 0;
  }

  /**
   * One sample. Statements: one roster read, one lease renewal, one history write if anything
   * changed. Work in this process follows what changed too: it examines the tenants holding
   * sessions now or at the last sample, those the roster read again (new, or quota changed) and
   * those whose heartbeat is due; every tenant only at a leader's first sample, on a resync, after
   * the roster's periodic full read, and once an hour (when an idle tenant's 24-hour peak can move).
   * A tenant left out holds no session and had none: its value, history and gauges stay as they were.
   */
  async sample(): Promise<void> {
    const started = performance.now();
    const { cluster, bus, metrics, timing } = this.p;
    const firstSample = this.lastSampleAt === 0;
    const removed = await this.roster.refresh();
    const unknown = this.roster.changed.filter((id) => !this.history.has(id));
    if (unknown.length) await this.history.load(unknown, Date.now());
    if (!this.clusterHistory.loaded) await this.clusterHistory.load(Date.now());
    if (firstSample) await this.p.db.$executeRaw`
      DELETE FROM tenant_usage u USING tenants t WHERE t.id = u.tenant_id AND t.cluster_id = ${cluster.id}::uuid AND t.status <> 'ACTIVE'`;

    const { rows } = await cluster.query<SessionRow & { role: string | null }>(tenantSessions);
    this.stats.activityQueries++;
    const pooled = await this.readPooler();
    const sampledAt = new Date();
    const now = sampledAt.getTime();
    const byRole = sessionsByRole(rows.filter((s) => s.role !== null) as SessionRow[]);

    // Heartbeats go out only while someone watches, each in its tenant's slot of the period.
    // The window is at most two intervals, so a sampler that was idle (or stalled) does not
    // send the whole fleet's heartbeats at once.
    const heartbeats = this.watched();
    const resyncing = this.resyncs.requested;
    const resync = resyncing > this.resyncs.answered;
    const windowStart = Math.max(this.lastSampleAt || 0, now - 2 * timing.intervalMs);
    // A leader's first sample reads the roster in full (and forget() resets the hour): everyone.
    const everyone = resync || this.roster.lastReadWasFull || peakHourOf(now) !== this.examinedAllIn;
    const examined = everyone ? [...this.roster.tenants] : this.toExamine(byRole, heartbeats ? { windowStart, now } : null);
    if (everyone) this.examinedAllIn = peakHourOf(now);
    this.stats.tenantsExamined += examined.length;
    const samples = buildTenantSamples(examined, byRole, sampledAt, (id) => this.history.peak24h(id, now), pooled);
    const publish: TenantUsageSample[] = [];
    const usageWrites: TenantUsageSample[] = [];
    const minuteRows: MinuteRow[] = [];
    for (const s of samples) {
      const signature = sampleSignature(s);
      const previous = this.published.get(s.tenantId);
      const seen = this.history.observe(s, now);
      if (seen.usage) usageWrites.push(s);
      if (seen.minute) minuteRows.push(seen.minute);
      // A tenant this leader has not published yet is news when it has sessions, or when it
      // moved since the last value recorded (the previous leader may have left it behind).
      const news = previous === undefined ? s.current > 0 || seen.before === 'different' : previous !== signature;
      if (resync || news || (heartbeats && heartbeatDue(this.roster.get(s.tenantId)!.phase, timing.heartbeatMs, windowStart, now))) publish.push(s);
      this.published.set(s.tenantId, signature);
      if (s.current > 0 || !this.history.atRest(s.tenantId)) this.active.add(s.tenantId);
      else this.active.delete(s.tenantId);
    }
    for (const r of removed) {
      this.published.delete(r.tenantId);
      this.gauged.delete(r.tenantId);
      this.active.delete(r.tenantId);
      const zero = this.history.removed(r.tenantId, now);
      if (zero) minuteRows.push(zero);
    }
    const clusterSample = await this.clusterSample(samples, rows.length, sampledAt);
    const clusterNews = this.isClusterNews(clusterSample, now) || resync;
    const clusterMinute = this.clusterHistory.observe(
      { sessions: clusterSample.current, tenantSessions: clusterSample.tenantConnections, allocatedConnections: clusterSample.allocatedConnections },
      now,
    );

    // Nothing leaves this replica unless the lease is still ours, renewed just now.
    if (this.stopped) return;
    if (!(await this.lease.acquireOrRenew())) return this.stepDown('its lease was taken');
    if (!this.lease.stillValid()) return this.stepDown('it stalled past its lease');
    const fence = this.lease.fence!;
    bus.publishUsage({
      clusterId: cluster.id,
      epoch: fence.epoch,
      leader: this.p.replica,
      sampledAt: sampledAt.toISOString(),
      tenants: publish,
      removed,
      cluster: clusterNews ? clusterSample : null,
    });
    if (resync) {
      this.resyncs.answered = resyncing;
      this.stats.resyncs++;
    }
    this.stats.batches++;
    metrics.batchTenants.observe({ cluster: cluster.name }, publish.length);
    this.gauge(samples);

    if (usageWrites.length || minuteRows.length || removed.length || clusterMinute) {
      const written = await this.history.write(fence, usageWrites, minuteRows, removed.map((r) => r.tenantId), sampledAt, clusterMinute);
      this.stats.historyRows += written.rows;
      this.stats.clusterHistoryRows += written.clusterRows;
      metrics.historyRows.inc({ cluster: cluster.name }, written.rows + written.clusterRows);
      if (!written.held) return this.stepDown('its lease was taken while it wrote history');
    }
    await this.pruneHourly();

    this.lastSampleAt = now;
    this.stats.samples++;
    metrics.samples.inc({ cluster: cluster.name });
    metrics.sampleDuration.observe({ cluster: cluster.name }, (performance.now() - started) / 1000);
  }

  /**
   * The tenants a sample must look at when it need not look at all: those holding sessions now
   * or at the last sample (until their history records the 0), those the roster read again, and (while someone watches) those whose
   * heartbeat falls in the window - a check of each tenant's phase, the one pass over the fleet.
   */
  private toExamine(byRole: ReadonlyMap<string, readonly SessionRow[]>, heartbeatWindow: { windowStart: number; now: number } | null): RosterEntry[] {
    const ids = new Set<string>(this.active);
    for (const id of this.roster.changed) ids.add(id);
    for (const role of byRole.keys()) {
      const entry = this.roster.ofRole(role);
      if (entry) ids.add(entry.id);
    }
    if (heartbeatWindow) {
      for (const t of this.roster.tenants) if (heartbeatDue(t.phase, this.p.timing.heartbeatMs, heartbeatWindow.windowStart, heartbeatWindow.now)) ids.add(t.id);
    }
    return [...ids].flatMap((id) => this.roster.get(id) ?? []);
  }

  /** The pooler's server connections (one SHOW SERVERS), or null without a pooler or when it does not answer. */
  private async readPooler(): Promise<PooledBackends | null> {
    const reader = this.p.pooler();
    if (!reader) return null;
    try {
      const backends = await reader.serverBackends();
      this.stats.poolerReads++;
      this.poolerFailing = false;
      return backends;
    } catch (err) {
      if (!this.poolerFailing) this.p.logger.warn({ err, cluster: this.p.cluster.name }, 'the pooler did not answer SHOW SERVERS: usage shows no pooled counts until it does');
      this.poolerFailing = true;
      return null;
    }
  }

  /**
   * This replica's gauges, for every tenant whose connections or quota moved (all of them
   * at a leader's first sample): a replica that is not leading sets them from the batches.
   */
  private gauge(samples: readonly TenantUsageSample[]): void {
    for (const s of samples) {
      if (s.current >= s.max) this.p.metrics.tenantAtLimit.inc({ tenant: s.tenantSlug });
      const key = `${s.current}/${s.max}`;
      if (this.gauged.get(s.tenantId) === key) continue;
      this.gauged.set(s.tenantId, key);
      this.p.metrics.recordTenantSample(s);
    }
  }

  /** The cluster's totals from the tenants examined (one left out holds no session, and a quota is at least 1: none is at its limit). */
  private async clusterSample(samples: readonly TenantUsageSample[], sessions: number, sampledAt: Date): Promise<ClusterUsageSample> {
    const facts = await this.serverFacts();
    return {
      clusterId: this.p.cluster.id,
      clusterName: this.p.cluster.name,
      current: sessions,
      tenantConnections: samples.reduce((n, s) => n + s.current, 0),
      maxConnections: facts.maxConnections,
      usagePercent: percent(sessions, facts.maxConnections),
      allocatedConnections: this.roster.allocated,
      tenantCount: this.roster.size,
      tenantsAtLimit: samples.filter((s) => s.current >= s.max).length,
      sampledAt: sampledAt.toISOString(),
    };
  }

  private isClusterNews(sample: ClusterUsageSample, now: number): boolean {
    const signature = sampleSignature(sample);
    if (this.clusterPublished?.signature === signature && now - this.clusterPublished.at < this.p.timing.heartbeatMs) return false;
    this.clusterPublished = { signature, at: now };
    return true;
  }

  /** max_connections changes only with a server restart: read once a minute, not every sample. */
  private async serverFacts(): Promise<ServerFacts> {
    if (!this.facts || Date.now() - this.facts.at > 60_000) this.facts = { at: Date.now(), value: await this.p.cluster.facts() };
    return this.facts.value;
  }

  private async pruneHourly(): Promise<void> {
    if (Date.now() - this.lastPruneAt < 3600_000) return;
    this.lastPruneAt = Date.now();
    await pruneUsageHistory(this.p.db, this.p.timing.retentionDays);
  }
}
