import { randomUUID } from 'node:crypto';
import { filter, Repeater } from 'graphql-yoga';
import type { ClusterRegistry } from '../clusters/cluster-registry.js';
import type { ControlClient } from '../../db/control-client.js';
import type { Logger } from '../../logger.js';
import type { TenantryMetrics } from '../../metrics.js';
import { tenantSessions } from '../../sql/activity.sql.js';
import type { EventBus } from '../events/event-bus.js';
import { UsageSampler, type SamplerTiming } from './usage-sampler.js';
import { buildTenantSamples, type ClusterUsageSample, type SessionRow, type TenantUsageSample } from './usage-sample.js';

/**
 * Live usage for the API: a sampler per cluster (only the leader replica samples), the
 * latest sample of every tenant as heard on the bus, and subscriptions that start with a
 * value at once and then only deliver what the sampler published.
 */
export class UsageService {
  readonly replica = randomUUID();
  private readonly samplers = new Map<string, UsageSampler>();
  private readonly latest = new Map<string, TenantUsageSample>();
  private readonly latestCluster = new Map<string, ClusterUsageSample>();
  private watchers = 0;
  private demandTimer: NodeJS.Timeout | undefined;
  private readonly listeners: AsyncIterator<unknown>[] = [];
  /** One-off reads of pg_stat_activity made outside the samplers (a first value nobody had yet). */
  readonly stats = { liveReads: 0 };

  constructor(
    private readonly p: {
      db: ControlClient;
      controlUrl: string;
      clusters: ClusterRegistry;
      bus: EventBus;
      metrics: TenantryMetrics;
      logger: Logger;
      timing: SamplerTiming;
      maxSubscriptionsPerSocket: number;
    },
  ) {}

  get bus(): EventBus {
    return this.p.bus;
  }

  get maxSubscriptionsPerSocket(): number {
    return this.p.maxSubscriptionsPerSocket;
  }

  async start(clusterIds: string[]): Promise<void> {
    this.listen(this.p.bus.allTenants(), (s) => {
      this.latest.set(s.tenantId, s);
      this.p.metrics.recordTenantSample(s);
    });
    for (const id of clusterIds) {
      this.listen(this.p.bus.cluster(id), (s) => this.latestCluster.set(s.clusterId, s));
      const sampler = new UsageSampler({ ...this.p, cluster: await this.p.clusters.get(id) });
      this.samplers.set(id, sampler);
      sampler.start();
    }
  }

  sampler(clusterId: string): UsageSampler | undefined {
    return this.samplers.get(clusterId);
  }

  async stop(): Promise<void> {
    clearInterval(this.demandTimer);
    await Promise.all([...this.samplers.values()].map((s) => s.stop()));
    await Promise.all(this.listeners.map((l) => l.return?.()));
  }

  /** The latest sample of each tenant, when one was heard recently enough to be current. */
  fresh(tenantId: string): TenantUsageSample | undefined {
    const s = this.latest.get(tenantId);
    return s && Date.now() - Date.parse(s.sampledAt) < 2 * Math.max(this.p.timing.heartbeatMs, this.p.timing.idleIntervalMs) ? s : undefined;
  }

  /** Samples for tenants with none current, read now: one pg_stat_activity query per cluster. */
  async readNow(tenantIds: readonly string[]): Promise<Map<string, TenantUsageSample>> {
    const tenants = await this.p.db.tenant.findMany({
      where: { id: { in: [...tenantIds] }, status: 'ACTIVE' },
      select: { id: true, slug: true, clusterId: true, roleName: true, quota: { select: { maxConnections: true } } },
    });
    const peaks = await this.p.db.usageMinute.groupBy({
      by: ['tenantId'],
      where: { tenantId: { in: [...tenantIds] }, minute: { gt: new Date(Date.now() - 24 * 3600_000) } },
      _max: { peakConnections: true },
    });
    const peakOf = new Map(peaks.map((r) => [r.tenantId, r._max.peakConnections ?? 0]));
    const result = new Map<string, TenantUsageSample>();
    for (const clusterId of new Set(tenants.map((t) => t.clusterId))) {
      const cluster = await this.p.clusters.get(clusterId);
      const { rows } = await cluster.query<SessionRow>(tenantSessions);
      this.stats.liveReads++;
      const list = tenants.filter((t) => t.clusterId === clusterId && t.quota).map((t) => ({ ...t, maxConnections: t.quota!.maxConnections }));
      for (const s of buildTenantSamples(list, rows, new Date(), peakOf)) result.set(s.tenantId, s);
    }
    return result;
  }

  /** Usage of many tenants: the sampled value where current, else read now (batched). */
  async usageOf(tenantIds: readonly string[]): Promise<(TenantUsageSample | null)[]> {
    const missing = tenantIds.filter((id) => !this.fresh(id));
    const read = missing.length ? await this.readNow(missing) : new Map<string, TenantUsageSample>();
    return tenantIds.map((id) => this.fresh(id) ?? read.get(id) ?? null);
  }

  /** One tenant's samples: the current value at once, then each published one. */
  watchTenant(tenantId: string): AsyncIterable<TenantUsageSample> {
    return this.watch(
      () => this.p.bus.tenant(tenantId),
      async () => (await this.usageOf([tenantId]))[0] ?? null,
    );
  }

  /** Every tenant's samples (admins), or those `visible` lets through. */
  watchAll(visible: (s: TenantUsageSample) => boolean): AsyncIterable<TenantUsageSample> {
    return this.watch(
      () => filter(visible)(this.p.bus.allTenants()),
      async () => null,
      () => [...this.latest.values()].filter(visible),
    );
  }

  watchCluster(clusterId: string): AsyncIterable<ClusterUsageSample> {
    return this.watch(
      () => this.p.bus.cluster(clusterId),
      async () => this.latestCluster.get(clusterId) ?? null,
    );
  }

  private watch<T>(source: () => AsyncIterable<T>, first: () => Promise<T | null>, firsts?: () => T[]): AsyncIterable<T> {
    return new Repeater<T>(async (push, stop) => {
      const iterator = source()[Symbol.asyncIterator]();
      this.watching(+1);
      void stop.then(() => {
        this.watching(-1);
        void iterator.return?.();
      });
      try {
        for (const value of firsts ? firsts() : []) await push(value);
        const initial = await first();
        if (initial) await push(initial);
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) await push(next.value);
      } catch (err) {
        stop(err);
      }
    });
  }

  /** While anyone watches on this replica, tell the sampling leader (wherever it runs) every interval. */
  private watching(delta: number): void {
    this.watchers += delta;
    this.p.metrics.subscribers.set(this.watchers);
    const ping = () => this.p.bus.publishDemand(this.replica);
    if (this.watchers > 0 && !this.demandTimer) {
      ping();
      this.demandTimer = setInterval(ping, this.p.timing.intervalMs);
      this.demandTimer.unref();
    } else if (this.watchers === 0 && this.demandTimer) {
      clearInterval(this.demandTimer);
      this.demandTimer = undefined;
    }
  }

  private listen<T>(source: AsyncIterable<T>, onValue: (v: T) => void): void {
    const iterator = source[Symbol.asyncIterator]();
    this.listeners.push(iterator);
    void (async () => {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) onValue(next.value);
    })();
  }
}
