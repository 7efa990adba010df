import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { filter, map, pipe, type Repeater } from 'graphql-yoga';
import type { ClusterRegistry } from '../clusters/index.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { Logger } from '../../platform/logger.js';
import type { TenantryMetrics } from '../../platform/metrics.js';
import { sessionsOfRoles, tenantSessions } from './activity.sql.js';
import type { EventBus } from '../../platform/events/event-bus.js';
import type { PoolerDriver } from '../pools/index.js';
import { PeriodicTask } from '../../platform/periodic-task.js';
import { flatMap } from '../../platform/streams/flat-map.js';
import { addToSet } from '../../platform/streams/keyed-sets.js';
import { SubscriberQueue, type SubscriberQueueOptions } from '../../platform/streams/subscriber-queue.js';
import { eventLoopStalls } from '../../platform/event-loop-stalls.js';
import { readFleetUsageHistory, readIdleRecorded, readPeaks24h, readUsageHistories, type FleetUsagePoint, type UsagePoint } from './usage-history.js';
import { UsageSampler, type PooledBackendsReader, type SamplerTiming } from './usage-sampler.js';
import { buildTenantSamples, sessionsByRole, type ClusterUsageSample, type PooledBackends, type RemovedTenant, type SessionRow, type TenantUsageSample, type UsageBatch } from './usage-sample.js';

/**
 * A tenant's usage as a subscriber gets it. `degraded`: a value re-sent because this replica
 * cannot hear the sampling leader of the tenant's cluster (the event bus is down and the
 * lease is elsewhere): the last value heard, which may be out of date.
 */
export type UsageValue = TenantUsageSample & { degraded?: true };

/** A cluster's totals as a subscriber gets them; `degraded` as for UsageValue. */
export type ClusterUsageValue = ClusterUsageSample & { degraded?: true };

/** What one subscriber of the batch stream receives per sample: the tenants it may see. */
export interface UsageBatchView {
  sampledAt: string;
  tenants: UsageValue[];
  removed: RemovedTenant[];
  /** This replica cannot hear the sampling leader of some cluster: values from it are not arriving. */
  degraded: boolean;
  /** The opening message of a subscription that named its tenants: every one of them. */
  snapshot: boolean;
}

/** While the event bus is down, every USAGE_HEARTBEAT_MS: the last values heard from the clusters this replica cannot hear. */
interface DegradedHeartbeat {
  degradedHeartbeat: true;
  sampledAt: string;
  tenants: UsageValue[];
}

/** What an every-tenant subscriber's queue holds: batches as heard, and messages made here. */
type FanOutItem = UsageBatch | UsageBatchView | DegradedHeartbeat;

/** `onOverflow`: the subscriber fell too far behind and is dropped (to close its transport at once). */
export type WatchOptions = Pick<SubscriberQueueOptions, 'onOverflow'>;

type Visible = (tenantId: string) => boolean;

interface TenantSubscriber {
  queue: SubscriberQueue<UsageValue>;
  /** A value from a batch arrived (the opening value, read meanwhile, is then out of date). */
  live: boolean;
  /** The last value it was given: re-sent, marked degraded, while its cluster's leader cannot be heard. */
  last: TenantUsageSample | undefined;
}

/**
 * Live usage for the API. Each replica listens to the bus once and fans out in process:
 * a sample's batch goes to the subscribers of the tenants in it (a map tenant → queues)
 * and, once, to each every-tenant subscriber (filtered as it reads), so delivering a
 * sample costs what changed, not subscribers × tenants. Every subscriber has a bounded
 * queue (USAGE_SUBSCRIBER_QUEUE samples); one that falls further behind is dropped, unless
 * this replica itself stalled (what piled up meanwhile arrives at once: see EventLoopStalls).
 * A subscriber is registered when its stream is first read, so one that never reads holds
 * nothing here. It also keeps the latest value of every tenant heard, for Tenant.usage, and
 * starts one sampler per cluster (only the lease holder among replicas samples).
 */
export class UsageService {
  readonly replica = randomUUID();
  private readonly samplers = new Map<string, UsageSampler>();
  private readonly latest = new Map<string, TenantUsageSample>();
  private readonly latestCluster = new Map<string, ClusterUsageSample>();
  /** Per cluster: the newest batch heard (its epoch, when it arrived, when it was sampled). */
  private readonly heard = new Map<string, { epoch: number; at: number; sampledAt: string }>();
  private readonly tenantSubscribers = new Map<string, Set<TenantSubscriber>>();
  private readonly everyTenantSubscribers = new Set<SubscriberQueue<FanOutItem>>();
  private readonly clusterSubscribers = new Map<string, Set<SubscriberQueue<ClusterUsageValue>>>();
  private watchers = 0;
  /** While anyone watches on this replica: tells the sampling leader (wherever it runs) every interval. */
  private readonly demand: PeriodicTask;
  private readonly degraded: PeriodicTask;
  private busDown = false;
  /** Whether the bus was ever up (its first connection is no recovery). */
  private busWasUp = false;
  private stopped = false;
  private stopListening: (() => void)[] = [];
  /** Reads of pg_stat_activity made outside the samplers (a first value nobody had yet), and subscribers dropped as too slow. */
  readonly stats = { liveReads: 0, dropped: 0 };

  /**
   * The pooler's server connections, read once (SHOW SERVERS on each PgBouncer) for every
   * cluster's sampler within half a sample interval: the read covers all clusters (a server
   * connection is told apart by role and pid), so N clusters do not cost N reads.
   */
  private readonly sharedPooled: PooledBackendsReader;

  constructor(
    private readonly p: {
      db: ControlClient;
      clusters: ClusterRegistry;
      bus: EventBus;
      metrics: TenantryMetrics;
      logger: Logger;
      timing: SamplerTiming;
      /** Samples a subscriber may fall behind before it is dropped. */
      subscriberQueue: number;
      /** The pooler, when one runs: it fronts every cluster (its server connections are told apart by role). */
      pooler?: { driver: () => PoolerDriver | null };
    },
  ) {
    this.demand = new PeriodicTask({
      name: 'usage demand',
      intervalMs: () => (this.watchers > 0 ? p.timing.intervalMs : 0),
      run: async () => {
        if (this.watchers > 0) p.bus.publishDemand(this.replica);
      },
      logger: p.logger,
    });
    let last: { at: number; read: Promise<PooledBackends> } | null = null;
    this.sharedPooled = {
      serverBackends: () => {
        const driver = p.pooler?.driver();
        if (!driver) return Promise.reject(new Error('no pooler'));
        if (!last || performance.now() - last.at > p.timing.intervalMs / 2) last = { at: performance.now(), read: driver.serverBackends() };
        return last.read;
      },
    };
    const heartbeatMs = () => (this.busDown ? p.timing.heartbeatMs : 0);
    this.degraded = new PeriodicTask({ name: 'degraded usage heartbeat', intervalMs: heartbeatMs, run: async () => this.degradedHeartbeat(), logger: p.logger });
  }

  async start(clusterIds: string[]): Promise<void> {
    this.demand.start();
    this.degraded.start();
    this.stopListening.push(
      this.p.bus.onUsage<UsageBatch>((batch) => this.onBatch(batch)),
      this.p.bus.onLink((link) => (link.up ? this.busBack() : this.busLost())),
    );
    this.busWasUp = this.p.bus.link.up;
    if (!this.busWasUp) this.busLost();
    for (const id of clusterIds) await this.addCluster(id);
  }

  /**
   * Samples a cluster (registered, or at start): one sampler each, contending for the cluster's
   * own lease. A cluster whose URL cannot be had is logged and left out (readiness reports it);
   * its registration or update (cluster.changed) tries again.
   */
  async addCluster(clusterId: string): Promise<void> {
    if (this.stopped || this.samplers.has(clusterId)) return;
    const { db, bus, metrics, logger, timing } = this.p;
    const cluster = await this.p.clusters.get(clusterId).catch((err: Error) => {
      logger.error({ err, clusterId }, 'the cluster\'s usage cannot be sampled');
      return null;
    });
    if (!cluster || this.samplers.has(clusterId) || this.stopped) return;
    const pooler = () => (this.p.pooler?.driver() ? this.sharedPooled : null);
    const sampler = new UsageSampler({ db, bus, metrics, logger, timing, cluster, pooler, replica: this.replica });
    this.samplers.set(clusterId, sampler);
    sampler.start();
  }

  /**
   * A registered cluster changed (cluster.changed): removed, it is no longer sampled; given a new
   * URL (its admin connection replaced), its sampler starts again on the new one; new, it starts.
   */
  async followCluster(clusterId: string, removed: boolean): Promise<void> {
    if (removed) return this.removeCluster(clusterId);
    const sampler = this.samplers.get(clusterId);
    if (sampler) {
      const current = await this.p.clusters.get(clusterId).catch(() => null);
      if (current === sampler.cluster) return;
      await this.removeCluster(clusterId);
    }
    await this.addCluster(clusterId);
  }

  /** Stops sampling a cluster (removed, or its URL changed: addCluster then starts it again). */
  async removeCluster(clusterId: string): Promise<void> {
    const sampler = this.samplers.get(clusterId);
    this.samplers.delete(clusterId);
    await sampler?.stop();
  }

  sampler(clusterId: string): UsageSampler | undefined {
    return this.samplers.get(clusterId);
  }

  /** Stops sampling (handing the lease over) and completes every subscription (their streams end cleanly). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.demand.stop(), this.degraded.stop()]);
    for (const stop of this.stopListening.splice(0)) stop();
    await Promise.all([...this.samplers.values()].map((s) => s.stop()));
    for (const set of this.tenantSubscribers.values()) for (const s of set) s.queue.end();
    for (const q of this.everyTenantSubscribers) q.end();
    for (const set of this.clusterSubscribers.values()) for (const q of set) q.end();
  }

  /** A sample's batch, as every replica hears it (the leader's own included). */
  private onBatch(batch: UsageBatch): void {
    const heard = this.heard.get(batch.clusterId);
    // A deposed leader's late batch: a newer leader has spoken already.
    if (heard && batch.epoch < heard.epoch) return;
    this.heard.set(batch.clusterId, { epoch: batch.epoch, at: Date.now(), sampledAt: batch.sampledAt });
    for (const s of batch.tenants) {
      this.latest.set(s.tenantId, s);
      this.p.metrics.recordTenantSample(s);
      for (const sub of this.tenantSubscribers.get(s.tenantId) ?? []) {
        sub.live = true;
        sub.last = s;
        sub.queue.push(s);
      }
    }
    for (const r of batch.removed) {
      this.latest.delete(r.tenantId);
      this.p.metrics.removeTenant(r.tenantSlug);
      // A suspended tenant may come back: its subscribers wait. One on its way out is done.
      if (r.status !== 'SUSPENDED') for (const sub of this.tenantSubscribers.get(r.tenantId) ?? []) sub.queue.end();
    }
    if (batch.tenants.length || batch.removed.length) for (const q of this.everyTenantSubscribers) q.push(batch);
    if (batch.cluster) {
      this.latestCluster.set(batch.clusterId, batch.cluster);
      for (const q of this.clusterSubscribers.get(batch.clusterId) ?? []) q.push(batch.cluster);
    }
  }

  /**
   * The latest value of a tenant, when its cluster's leader was heard recently: a tenant
   * absent from recent batches has not changed since the value held here.
   */
  fresh(tenantId: string): TenantUsageSample | undefined {
    const s = this.latest.get(tenantId);
    const heard = s && this.heardRecently(s.clusterId);
    if (!s || !heard) return undefined;
    return heard.sampledAt > s.sampledAt ? { ...s, sampledAt: heard.sampledAt } : s;
  }

  /** The cluster's leader's latest batch, if it came recently (a sampler publishes one every sample, idle or not). */
  private heardRecently(clusterId: string): { sampledAt: string } | undefined {
    if (this.cut(clusterId)) return undefined;
    const heard = this.heard.get(clusterId);
    const window = 2 * Math.max(this.p.timing.heartbeatMs, this.p.timing.idleIntervalMs);
    return heard && Date.now() - heard.at <= window ? heard : undefined;
  }

  /**
   * Tenants with no session, as the leader recorded them. A leader publishes a tenant only when
   * its value moves (or someone watches it), so an idle tenant is seldom in `latest`, above all
   * on a replica started after the leader; but the leader writes tenant_usage whenever a value
   * moves (after publishing it), so while it is heard, a row with no session is the value as of
   * its latest sample. Without this, every page of idle tenants read pg_stat_activity and every
   * PgBouncer's SHOW SERVERS, whose rows grow with the fleet's pools (tenants(first: 50) took
   * 340 ms at 10,000 tenants, 19.5 ms of it without the usage field). A recorded tenant with
   * sessions is read live: its breakdown (pooled, busiest) is not recorded.
   */
  private async idleAsRecorded(tenantIds: readonly string[]): Promise<Map<string, TenantUsageSample>> {
    const out = new Map<string, TenantUsageSample>();
    // With a pooler, none of its server connections is theirs: no session at all.
    const noneOfThePoolers: PooledBackends | null = this.p.pooler?.driver() ? new Map() : null;
    for (const r of await readIdleRecorded(this.p.db, tenantIds)) {
      const heard = this.heardRecently(r.cluster_id);
      if (!heard) continue;
      const at = new Date(Math.max(Date.parse(heard.sampledAt), r.sampled_at.getTime()));
      const tenant = { id: r.tenant_id, slug: r.slug, clusterId: r.cluster_id, roleName: r.role_name, maxConnections: r.max_connections };
      const [sample] = buildTenantSamples([tenant], new Map(), at, () => r.peak ?? 0, noneOfThePoolers);
      out.set(r.tenant_id, sample!);
    }
    return out;
  }

  /** Samples for tenants with none current, read now: one pg_stat_activity query per cluster. */
  async readNow(tenantIds: readonly string[]): Promise<Map<string, TenantUsageSample>> {
    const tenants = await this.p.db.tenant.findMany({
      where: { id: { in: [...tenantIds] }, status: 'ACTIVE' },
      select: { id: true, slug: true, clusterId: true, roleName: true, quota: { select: { maxConnections: true } } },
    });
    const peaks = await readPeaks24h(this.p.db, tenants.map((t) => t.id));
    const result = new Map<string, TenantUsageSample>();
    // Each cluster on its own: one that is down leaves only its own tenants without a value.
    for (const clusterId of new Set(tenants.map((t) => t.clusterId))) {
      const rows = await this.p.clusters
        .get(clusterId)
        .then((cluster) => cluster.query<SessionRow>(tenantSessions))
        .then((r) => r.rows)
        .catch((err: Error) => {
          this.p.logger.warn({ err, clusterId }, 'reading a cluster\'s sessions failed');
          return null;
        });
      if (!rows) continue;
      this.stats.liveReads++;
      const pooled = this.p.pooler?.driver() ? await this.sharedPooled.serverBackends().catch(() => null) : null;
      const list = tenants.filter((t) => t.clusterId === clusterId && t.quota).map((t) => ({ ...t, maxConnections: t.quota!.maxConnections }));
      for (const s of buildTenantSamples(list, sessionsByRole(rows), new Date(), (id) => peaks.get(id) ?? 0, pooled)) result.set(s.tenantId, s);
    }
    return result;
  }

  /** Usage of many tenants: the value heard where current, else read now (batched). */
  async usageOf(tenantIds: readonly string[]): Promise<(TenantUsageSample | null)[]> {
    const missing = tenantIds.filter((id) => !this.fresh(id));
    const idle = missing.length && this.heard.size ? await this.idleAsRecorded(missing) : new Map<string, TenantUsageSample>();
    const unread = missing.filter((id) => !idle.has(id));
    const read = unread.length ? await this.readNow(unread) : new Map<string, TenantUsageSample>();
    return tenantIds.map((id) => this.fresh(id) ?? idle.get(id) ?? read.get(id) ?? null);
  }

  /** The sessions of these roles on one cluster now, oldest first (one pg_stat_activity read; the caller holds a live-read slot). */
  async sessionsOfRoles(clusterId: string, roles: readonly string[]): Promise<SessionRow[]> {
    const cluster = await this.p.clusters.get(clusterId);
    return (await cluster.query<SessionRow>(sessionsOfRoles, [roles])).rows;
  }

  /** Per-minute points of many tenants over the last `rangeSeconds` (one query). */
  readUsageHistories(tenantIds: readonly string[], rangeSeconds: number): Promise<UsagePoint[][]> {
    return readUsageHistories(this.p.db, tenantIds, rangeSeconds);
  }

  /** Per-minute sessions of the clusters (summed) or of one, over the last `rangeSeconds` (one query). */
  readFleetUsageHistory(rangeSeconds: number, clusterId: string | null): Promise<FleetUsagePoint[]> {
    return readFleetUsageHistory(this.p.db, rangeSeconds, clusterId);
  }

  /** One tenant's usage: the current value at once, then each one the leader publishes. */
  watchTenant(tenantId: string, options: WatchOptions = {}): SubscriberQueue<UsageValue> {
    return this.subscriber<UsageValue>(options, (queue) => {
      const subscriber: TenantSubscriber = { queue, live: false, last: undefined };
      const unregister = addToSet(this.tenantSubscribers, tenantId, subscriber);
      // Subscribed first, then the opening value: a sample published meanwhile is not lost,
      // and the opening value is skipped if a newer one already arrived.
      void this.usageOf([tenantId]).then(
        ([first]) => {
          if (!first || subscriber.live) return;
          subscriber.last = first;
          queue.push(first);
        },
        (err) => this.p.logger.warn({ err, tenantId }, 'could not read the opening usage value'),
      );
      return unregister;
    });
  }

  /**
   * Every tenant `visible` lets through, one value at a time. It opens with the tenants
   * that hold sessions now (not the whole fleet); the others arrive when they change or
   * with their heartbeats, spread over USAGE_HEARTBEAT_MS.
   */
  watchAll(visible: Visible, options: WatchOptions = {}): Repeater<UsageValue> {
    return pipe(
      this.batchSubscriber(options, () => this.openingOfActive(visible)),
      flatMap((b: FanOutItem) => b.tenants.filter((s) => visible(s.tenantId))),
    );
  }

  /** Per sample, the visible tenants that changed or are due a heartbeat, as one list (opening as watchAll does). */
  watchBatches(visible: Visible, options: WatchOptions = {}): Repeater<UsageBatchView> {
    return this.batchViews(this.batchSubscriber(options, () => this.openingOfActive(visible)), visible);
  }

  /**
   * The batch stream of the tenants asked for, opening with a snapshot of every one of them:
   * the current usage of the ACTIVE ones, the others as removed (no usage comes for them).
   */
  async watchTenantBatches(tenants: readonly { id: string; slug: string; status: string }[], options: WatchOptions = {}): Promise<Repeater<UsageBatchView>> {
    const active = tenants.filter((t) => t.status === 'ACTIVE');
    const read = await this.usageOf(active.map((t) => t.id));
    const removed = tenants.filter((t) => t.status !== 'ACTIVE').map((t) => ({ tenantId: t.id, tenantSlug: t.slug, status: t.status }));
    const asked = new Set(tenants.map((t) => t.id));
    const visible = (tenantId: string) => asked.has(tenantId);
    // Made when the subscriber registers, in the same step: a batch heard since the values
    // were read is in `latest` (newer than what was read), and every later one is queued.
    const snapshot = (): UsageBatchView => {
      const values = active.flatMap((t, i) => {
        const heard = this.latest.get(t.id);
        return (heard && !this.cut(heard.clusterId) && (!read[i] || heard.sampledAt > read[i]!.sampledAt) ? heard : read[i]) ?? [];
      });
      const sampledAt = values.map((v) => v.sampledAt).sort().at(-1) ?? new Date().toISOString();
      return { sampledAt, tenants: values, removed, degraded: this.anyCut(), snapshot: true };
    };
    return this.batchViews(this.batchSubscriber(options, snapshot), visible);
  }

  /** What a batch subscriber reads: the visible part of each message; a degraded heartbeat says so, without values. */
  private batchViews(source: SubscriberQueue<FanOutItem>, visible: Visible): Repeater<UsageBatchView> {
    return pipe(
      source,
      map((b: FanOutItem): UsageBatchView | null => {
        if ('degradedHeartbeat' in b) return { sampledAt: b.sampledAt, tenants: [], removed: [], degraded: true, snapshot: false };
        if (!('epoch' in b)) return b;
        const tenants = b.tenants.filter((s) => visible(s.tenantId));
        const removed = b.removed.filter((r) => visible(r.tenantId));
        return tenants.length || removed.length ? { sampledAt: b.sampledAt, tenants, removed, degraded: this.anyCut(), snapshot: false } : null;
      }),
      filter((view): view is UsageBatchView => view !== null),
    );
  }

  /** The opening message of an every-tenant stream: the visible tenants holding sessions now. */
  private openingOfActive(visible: Visible): UsageBatchView | null {
    const active = [...this.latest.values()].filter((s) => s.current > 0 && visible(s.tenantId));
    if (!active.length) return null;
    const newest = [...this.heard.values()].map((h) => h.sampledAt).sort().at(-1) ?? new Date().toISOString();
    return { sampledAt: newest, tenants: active, removed: [], degraded: this.anyCut(), snapshot: false };
  }

  /** An every-tenant subscriber: each batch heard goes to it whole (filtered as it reads). */
  private batchSubscriber(options: WatchOptions, opening: () => UsageBatchView | null): SubscriberQueue<FanOutItem> {
    return this.subscriber<FanOutItem>(options, (queue) => {
      // Registered and given its opening value in one step: no batch can fall in between.
      const first = opening();
      if (first) queue.push(first);
      this.everyTenantSubscribers.add(queue);
      return () => this.everyTenantSubscribers.delete(queue);
    });
  }

  watchCluster(clusterId: string, options: WatchOptions = {}): SubscriberQueue<ClusterUsageValue> {
    return this.subscriber<ClusterUsageValue>(options, (queue) => {
      const unregister = addToSet(this.clusterSubscribers, clusterId, queue);
      const first = this.latestCluster.get(clusterId);
      if (first) queue.push(first);
      return unregister;
    });
  }

  /**
   * What this replica holds per subscriber, for tests and diagnostics: once every
   * subscriber has left, every count is zero (`demandTimer`: demand is being sent).
   */
  subscriberCounts(): { watchers: number; tenantsWatched: number; tenantSubscribers: number; everyTenantSubscribers: number; clustersWatched: number; clusterSubscribers: number; demandTimer: boolean } {
    const total = (map: Map<string, Set<unknown>>) => [...map.values()].reduce((n, set) => n + set.size, 0);
    return {
      watchers: this.watchers,
      tenantsWatched: this.tenantSubscribers.size,
      tenantSubscribers: total(this.tenantSubscribers),
      everyTenantSubscribers: this.everyTenantSubscribers.size,
      clustersWatched: this.clusterSubscribers.size,
      clusterSubscribers: total(this.clusterSubscribers),
      demandTimer: this.watchers > 0,
    };
  }

  /** Whether this replica cannot hear the cluster's sampling leader: the bus is down and the lease is elsewhere. */
  private cut(clusterId: string): boolean {
    return !this.p.bus.link.up && !this.samplers.get(clusterId)?.stats.leader;
  }

  private anyCut(): boolean {
    return [...this.samplers.keys()].some((id) => this.cut(id));
  }

  /** The bus went down: subscribers of the clusters no longer heard are told at once, then every USAGE_HEARTBEAT_MS. */
  private busLost(): void {
    if (this.busDown) return;
    this.busDown = true;
    void this.degraded.runNow();
  }

  /**
   * The bus is back. What was heard before the outage may have changed since, for the
   * clusters this replica could not hear: forgotten (Tenant.usage reads them now until
   * samples arrive), and every replica's leaders are asked to publish every tenant again.
   */
  private busBack(): void {
    this.busDown = false;
    this.degraded.reschedule();
    // The first connection at start: nothing was missed.
    if (!this.busWasUp) {
      this.busWasUp = true;
      return;
    }
    for (const [tenantId, s] of this.latest) if (!this.samplers.get(s.clusterId)?.stats.leader) this.latest.delete(tenantId);
    for (const clusterId of this.latestCluster.keys()) if (!this.samplers.get(clusterId)?.stats.leader) this.latestCluster.delete(clusterId);
    this.p.bus.publishResync(this.replica);
  }

  private degradedHeartbeat(): void {
    if (!this.anyCut()) return;
    for (const set of this.tenantSubscribers.values()) {
      for (const sub of set) if (sub.last && this.cut(sub.last.clusterId)) sub.queue.push({ ...sub.last, degraded: true });
    }
    for (const [clusterId, set] of this.clusterSubscribers) {
      const last = this.latestCluster.get(clusterId);
      if (last && this.cut(clusterId)) for (const q of set) q.push({ ...last, degraded: true });
    }
    if (this.everyTenantSubscribers.size === 0) return;
    const tenants = [...this.latest.values()].filter((s) => this.cut(s.clusterId)).map((s): UsageValue => ({ ...s, degraded: true }));
    const heartbeat: DegradedHeartbeat = { degradedHeartbeat: true, sampledAt: new Date().toISOString(), tenants };
    for (const q of this.everyTenantSubscribers) q.push(heartbeat);
  }

  /**
   * A subscriber's bounded queue. `register` runs when the stream is first read (after this
   * service stopped, the stream just ends) and returns how to unregister; the subscriber is
   * counted while registered.
   */
  private subscriber<T>(options: WatchOptions, register: (queue: SubscriberQueue<T>) => () => void): SubscriberQueue<T> {
    const queue: SubscriberQueue<T> = new SubscriberQueue<T>({
      capacity: this.p.subscriberQueue,
      overflow: 'fail',
      // A backlog this replica piled up while it stalled is not the subscriber's doing.
      forgive: () => eventLoopStalls.recovering(),
      onOverflow: () => {
        this.stats.dropped++;
        this.p.metrics.subscribersDropped.inc({ reason: 'SUBSCRIBER_TOO_SLOW' });
        options.onOverflow?.();
      },
      start: () => {
        if (this.stopped) return queue.end();
        this.watching(+1);
        const unregister = register(queue);
        queue.onEnd(() => {
          unregister();
          this.watching(-1);
        });
      },
    });
    return queue;
  }

  /** Demand goes out at once when the first subscriber comes, then every interval, and stops with the last one. */
  private watching(delta: number): void {
    this.watchers += delta;
    this.p.metrics.subscribers.set(this.watchers);
    if (delta > 0 && this.watchers === 1) void this.demand.runNow();
    else if (this.watchers === 0) this.demand.reschedule();
  }
}
