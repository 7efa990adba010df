import { randomUUID } from 'node:crypto';
import type { ClusterRegistry } from '../clusters/cluster-registry.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { Logger } from '../../platform/logger.js';
import type { TenantryMetrics } from '../../platform/metrics.js';
import { tenantSessions } from './activity.sql.js';
import type { EventBus } from '../../platform/events/event-bus.js';
import type { PoolerDriver } from '../pools/pooler-driver.js';
import { SubscriberQueue } from '../../platform/streams/subscriber-queue.js';
import { eventLoopStalls } from '../../platform/event-loop-stalls.js';
import { readPeaks24h } from './usage-history.js';
import { UsageSampler, type SamplerTiming } from './usage-sampler.js';
import { buildTenantSamples, sessionsByRole, type ClusterUsageSample, type RemovedTenant, type SessionRow, type TenantUsageSample, type UsageBatch } from './usage-sample.js';

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

export interface WatchOptions {
  /** Runs at once when the subscriber falls too far behind and is dropped (to close its transport). */
  onOverflow?: () => void;
}

type Visible = (tenantId: string) => boolean;

interface BatchSubscriber {
  queue: SubscriberQueue<FanOutItem>;
  visible: Visible;
}

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
 * It also keeps the latest value of every tenant heard, for Tenant.usage, and starts one
 * sampler per cluster (only the lease holder among replicas samples).
 */
export class UsageService {
  readonly replica = randomUUID();
  private readonly samplers = new Map<string, UsageSampler>();
  private readonly latest = new Map<string, TenantUsageSample>();
  private readonly latestCluster = new Map<string, ClusterUsageSample>();
  /** Per cluster: the newest batch heard (its epoch, when it arrived, when it was sampled). */
  private readonly heard = new Map<string, { epoch: number; at: number; sampledAt: string }>();
  private readonly tenantSubscribers = new Map<string, Set<TenantSubscriber>>();
  private readonly everyTenantSubscribers = new Set<BatchSubscriber>();
  private readonly clusterSubscribers = new Map<string, Set<SubscriberQueue<ClusterUsageValue>>>();
  private watchers = 0;
  private demandTimer: NodeJS.Timeout | undefined;
  private stopListening: (() => void)[] = [];
  /** While the event bus is down: the degraded heartbeats. */
  private degradedTimer: NodeJS.Timeout | undefined;
  /** Whether the bus was ever up (its first connection is no recovery). */
  private busWasUp = false;
  /** Reads of pg_stat_activity made outside the samplers (a first value nobody had yet), and batches heard. */
  readonly stats = { liveReads: 0, batchesHeard: 0, staleBatches: 0, dropped: 0, degradedHeartbeats: 0, resyncsRequested: 0 };

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
      maxSubscriptionsPerSocket: number;
      /** The pooler and the cluster it fronts (the default cluster), when one runs. */
      pooler?: { clusterId: string; driver: () => PoolerDriver | null };
    },
  ) {}

  get bus(): EventBus {
    return this.p.bus;
  }

  get maxSubscriptionsPerSocket(): number {
    return this.p.maxSubscriptionsPerSocket;
  }

  async start(clusterIds: string[]): Promise<void> {
    this.stopListening.push(
      this.p.bus.onUsage((batch) => this.onBatch(batch)),
      this.p.bus.onLink((link) => (link.up ? this.busBack() : this.busDown())),
    );
    this.busWasUp = this.p.bus.link.up;
    if (!this.busWasUp) this.busDown();
    for (const id of clusterIds) {
      const sampler = new UsageSampler({
        ...this.p,
        cluster: await this.p.clusters.get(id),
        pooler: () => (this.p.pooler?.clusterId === id ? this.p.pooler.driver() : null),
        replica: this.replica,
      });
      this.samplers.set(id, sampler);
      sampler.start();
    }
  }

  sampler(clusterId: string): UsageSampler | undefined {
    return this.samplers.get(clusterId);
  }

  /** Stops sampling (handing the lease over) and completes every subscription. */
  async stop(): Promise<void> {
    clearInterval(this.demandTimer);
    clearInterval(this.degradedTimer);
    for (const stop of this.stopListening.splice(0)) stop();
    await Promise.all([...this.samplers.values()].map((s) => s.stop()));
    this.endSubscriptions();
  }

  /** Completes every usage subscription of this replica (their streams end cleanly). */
  endSubscriptions(): void {
    for (const set of this.tenantSubscribers.values()) for (const s of set) s.queue.end();
    for (const s of this.everyTenantSubscribers) s.queue.end();
    for (const set of this.clusterSubscribers.values()) for (const q of set) q.end();
  }

  /** A sample's batch, as every replica hears it (the leader's own included). */
  private onBatch(batch: UsageBatch): void {
    const heard = this.heard.get(batch.clusterId);
    // A deposed leader's late batch: a newer leader has spoken already.
    if (heard && batch.epoch < heard.epoch) {
      this.stats.staleBatches++;
      return;
    }
    this.heard.set(batch.clusterId, { epoch: batch.epoch, at: Date.now(), sampledAt: batch.sampledAt });
    this.stats.batchesHeard++;
    for (const s of batch.tenants) {
      this.latest.set(s.tenantId, s);
      this.p.metrics.recordTenantSample(s);
      const subscribers = this.tenantSubscribers.get(s.tenantId);
      if (subscribers) {
        for (const sub of subscribers) {
          sub.live = true;
          sub.last = s;
          sub.queue.push(s);
        }
      }
    }
    for (const r of batch.removed) {
      this.latest.delete(r.tenantId);
      this.p.metrics.removeTenant(r.tenantSlug);
      // A suspended tenant may come back: its subscribers wait. One on its way out is done.
      if (r.status !== 'SUSPENDED') for (const sub of this.tenantSubscribers.get(r.tenantId) ?? []) sub.queue.end();
    }
    if (batch.tenants.length || batch.removed.length) for (const sub of this.everyTenantSubscribers) sub.queue.push(batch);
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
    if (!s || this.cut(s.clusterId)) return undefined;
    const heard = this.heard.get(s.clusterId);
    const window = 2 * Math.max(this.p.timing.heartbeatMs, this.p.timing.idleIntervalMs);
    if (!heard || Date.now() - heard.at > window) return undefined;
    return heard.sampledAt > s.sampledAt ? { ...s, sampledAt: heard.sampledAt } : s;
  }

  /** Samples for tenants with none current, read now: one pg_stat_activity query per cluster. */
  async readNow(tenantIds: readonly string[]): Promise<Map<string, TenantUsageSample>> {
    const tenants = await this.p.db.tenant.findMany({
      where: { id: { in: [...tenantIds] }, status: 'ACTIVE' },
      select: { id: true, slug: true, clusterId: true, roleName: true, quota: { select: { maxConnections: true } } },
    });
    const peaks = await readPeaks24h(this.p.db, tenants.map((t) => t.id));
    const result = new Map<string, TenantUsageSample>();
    for (const clusterId of new Set(tenants.map((t) => t.clusterId))) {
      const cluster = await this.p.clusters.get(clusterId);
      const { rows } = await cluster.query<SessionRow>(tenantSessions);
      this.stats.liveReads++;
      const driver = this.p.pooler?.clusterId === clusterId ? this.p.pooler.driver() : null;
      const pooled = driver?.serverBackends ? await driver.serverBackends().catch(() => null) : null;
      const list = tenants.filter((t) => t.clusterId === clusterId && t.quota).map((t) => ({ ...t, maxConnections: t.quota!.maxConnections }));
      for (const s of buildTenantSamples(list, sessionsByRole(rows), new Date(), (id) => peaks.get(id) ?? 0, pooled)) result.set(s.tenantId, s);
    }
    return result;
  }

  /** Usage of many tenants: the value heard where current, else read now (batched). */
  async usageOf(tenantIds: readonly string[]): Promise<(TenantUsageSample | null)[]> {
    const missing = tenantIds.filter((id) => !this.fresh(id));
    const read = missing.length ? await this.readNow(missing) : new Map<string, TenantUsageSample>();
    return tenantIds.map((id) => this.fresh(id) ?? read.get(id) ?? null);
  }

  /** One tenant's usage: the current value at once, then each one the leader publishes. */
  watchTenant(tenantId: string, options: WatchOptions = {}): AsyncIterableIterator<UsageValue> {
    const subscriber: TenantSubscriber = { queue: this.queue<UsageValue>(options), live: false, last: undefined };
    const set = this.tenantSubscribers.get(tenantId) ?? new Set();
    this.tenantSubscribers.set(tenantId, set);
    set.add(subscriber);
    subscriber.queue.onEnd(() => {
      set.delete(subscriber);
      if (set.size === 0 && this.tenantSubscribers.get(tenantId) === set) this.tenantSubscribers.delete(tenantId);
    });
    // Subscribed first, then the opening value: a sample published meanwhile is not lost,
    // and the opening value is skipped if a newer one already arrived.
    void this.usageOf([tenantId]).then(
      ([first]) => {
        if (!first || subscriber.live || !subscriber.queue.open) return;
        subscriber.last = first;
        subscriber.queue.unshift(first);
      },
      (err) => this.p.logger.warn({ err, tenantId }, 'could not read the opening usage value'),
    );
    return subscriber.queue;
  }

  /**
   * Every tenant `visible` lets through, one value at a time. It opens with the tenants
   * that hold sessions now (not the whole fleet); the others arrive when they change or
   * with their heartbeats, spread over USAGE_HEARTBEAT_MS.
   */
  watchAll(visible: Visible, options: WatchOptions = {}): AsyncIterableIterator<UsageValue> {
    const queue = this.watchBatchesRaw(visible, options, this.openingOfActive(visible));
    return flatten(queue, (b) => b.tenants.filter((s) => visible(s.tenantId)));
  }

  /** Per sample, the visible tenants that changed or are due a heartbeat, as one list (opening as watchAll does). */
  watchBatches(visible: Visible, options: WatchOptions = {}): AsyncIterableIterator<UsageBatchView> {
    return this.batchViews(this.watchBatchesRaw(visible, options, this.openingOfActive(visible)), visible);
  }

  /**
   * The batch stream of the tenants asked for, opening with a snapshot of every one of them:
   * the current usage of the ACTIVE ones, the others as removed (no usage comes for them).
   */
  async watchTenantBatches(tenants: readonly { id: string; slug: string; status: string }[], options: WatchOptions = {}): Promise<AsyncIterableIterator<UsageBatchView>> {
    const active = tenants.filter((t) => t.status === 'ACTIVE');
    const read = await this.usageOf(active.map((t) => t.id));
    // Nothing awaits from here to registering the subscriber: a batch heard while the values
    // were read is in `latest` (newer than what was read), and every later one is queued.
    const values: TenantUsageSample[] = [];
    active.forEach((t, i) => {
      const heard = this.latest.get(t.id);
      const value = heard && !this.cut(heard.clusterId) && (!read[i] || heard.sampledAt > read[i]!.sampledAt) ? heard : read[i];
      if (value) values.push(value);
    });
    const removed = tenants.filter((t) => t.status !== 'ACTIVE').map((t) => ({ tenantId: t.id, tenantSlug: t.slug, status: t.status }));
    const asked = new Set(tenants.map((t) => t.id));
    const visible = (tenantId: string) => asked.has(tenantId);
    const sampledAt = values.map((v) => v.sampledAt).sort().at(-1) ?? new Date().toISOString();
    const snapshot: UsageBatchView = { sampledAt, tenants: values, removed, degraded: this.anyCut(), snapshot: true };
    return this.batchViews(this.watchBatchesRaw(visible, options, snapshot), visible);
  }

  /** What a batch subscriber reads: the visible part of each message; a degraded heartbeat says so, without values. */
  private batchViews(queue: SubscriberQueue<FanOutItem>, visible: Visible): AsyncIterableIterator<UsageBatchView> {
    return filterMap(queue, (b): UsageBatchView | null => {
      if ('degradedHeartbeat' in b) return { sampledAt: b.sampledAt, tenants: [], removed: [], degraded: true, snapshot: false };
      if (!('epoch' in b)) return b;
      const tenants = b.tenants.filter((s) => visible(s.tenantId));
      const removed = b.removed.filter((r) => visible(r.tenantId));
      return tenants.length || removed.length ? { sampledAt: b.sampledAt, tenants, removed, degraded: this.anyCut(), snapshot: false } : null;
    });
  }

  /** The opening message of an every-tenant stream: the visible tenants holding sessions now. */
  private openingOfActive(visible: Visible): UsageBatchView | null {
    const active = [...this.latest.values()].filter((s) => s.current > 0 && visible(s.tenantId));
    if (!active.length) return null;
    const newest = [...this.heard.values()].map((h) => h.sampledAt).sort().at(-1) ?? new Date().toISOString();
    return { sampledAt: newest, tenants: active, removed: [], degraded: this.anyCut(), snapshot: false };
  }

  private watchBatchesRaw(visible: Visible, options: WatchOptions, opening: UsageBatchView | null): SubscriberQueue<FanOutItem> {
    const subscriber: BatchSubscriber = { queue: this.queue(options), visible };
    // Registered and given its opening value in one step: no batch can fall in between.
    if (opening) subscriber.queue.push(opening);
    this.everyTenantSubscribers.add(subscriber);
    subscriber.queue.onEnd(() => this.everyTenantSubscribers.delete(subscriber));
    return subscriber.queue;
  }

  watchCluster(clusterId: string, options: WatchOptions = {}): AsyncIterableIterator<ClusterUsageValue> {
    const queue = this.queue<ClusterUsageValue>(options);
    const set = this.clusterSubscribers.get(clusterId) ?? new Set();
    this.clusterSubscribers.set(clusterId, set);
    set.add(queue);
    queue.onEnd(() => {
      set.delete(queue);
      if (set.size === 0 && this.clusterSubscribers.get(clusterId) === set) this.clusterSubscribers.delete(clusterId);
    });
    const first = this.latestCluster.get(clusterId);
    if (first) queue.push(first);
    return queue;
  }

  /**
   * What this replica holds per subscriber, for tests and diagnostics: once every
   * subscriber has left, every count is zero.
   */
  subscriberCounts(): { watchers: number; tenantsWatched: number; tenantSubscribers: number; everyTenantSubscribers: number; clustersWatched: number; clusterSubscribers: number; demandTimer: boolean } {
    let tenantSubscribers = 0;
    for (const set of this.tenantSubscribers.values()) tenantSubscribers += set.size;
    let clusterSubscribers = 0;
    for (const set of this.clusterSubscribers.values()) clusterSubscribers += set.size;
    return {
      watchers: this.watchers,
      tenantsWatched: this.tenantSubscribers.size,
      tenantSubscribers,
      everyTenantSubscribers: this.everyTenantSubscribers.size,
      clustersWatched: this.clusterSubscribers.size,
      clusterSubscribers,
      demandTimer: this.demandTimer !== undefined,
    };
  }

  /** Whether this replica cannot hear the cluster's sampling leader: the bus is down and the lease is elsewhere. */
  private cut(clusterId: string): boolean {
    return !this.p.bus.link.up && !this.samplers.get(clusterId)?.stats.leader;
  }

  private anyCut(): boolean {
    if (this.p.bus.link.up) return false;
    for (const id of this.samplers.keys()) if (this.cut(id)) return true;
    return false;
  }

  /** The bus went down: subscribers of the clusters no longer heard are told at once, then every USAGE_HEARTBEAT_MS. */
  private busDown(): void {
    if (this.degradedTimer) return;
    this.degradedTimer = setInterval(() => this.degradedHeartbeat(), this.p.timing.heartbeatMs);
    this.degradedTimer.unref();
    this.degradedHeartbeat();
  }

  /**
   * The bus is back. What was heard before the outage may have changed since, for the
   * clusters this replica could not hear: forgotten (Tenant.usage reads them now until
   * samples arrive), and every replica's leaders are asked to publish every tenant again.
   */
  private busBack(): void {
    clearInterval(this.degradedTimer);
    this.degradedTimer = undefined;
    // The first connection at start: nothing was missed.
    if (!this.busWasUp) {
      this.busWasUp = true;
      return;
    }
    for (const [tenantId, s] of this.latest) if (!this.samplers.get(s.clusterId)?.stats.leader) this.latest.delete(tenantId);
    for (const clusterId of this.latestCluster.keys()) if (!this.samplers.get(clusterId)?.stats.leader) this.latestCluster.delete(clusterId);
    this.stats.resyncsRequested++;
    this.p.bus.publishResync(this.replica);
  }

  private degradedHeartbeat(): void {
    if (!this.anyCut()) return;
    this.stats.degradedHeartbeats++;
    for (const set of this.tenantSubscribers.values()) {
      for (const sub of set) if (sub.last && this.cut(sub.last.clusterId)) sub.queue.push({ ...sub.last, degraded: true });
    }
    for (const [clusterId, set] of this.clusterSubscribers) {
      const last = this.latestCluster.get(clusterId);
      if (last && this.cut(clusterId)) for (const q of set) q.push({ ...last, degraded: true });
    }
    if (this.everyTenantSubscribers.size === 0) return;
    const tenants: UsageValue[] = [];
    for (const s of this.latest.values()) if (this.cut(s.clusterId)) tenants.push({ ...s, degraded: true });
    const heartbeat: DegradedHeartbeat = { degradedHeartbeat: true, sampledAt: new Date().toISOString(), tenants };
    for (const sub of this.everyTenantSubscribers) sub.queue.push(heartbeat);
  }

  /** A subscriber's bounded queue, counted while it lives. */
  private queue<T>(options: WatchOptions): SubscriberQueue<T> {
    const queue = new SubscriberQueue<T>({
      capacity: this.p.subscriberQueue,
      overflow: 'fail',
      // A backlog this replica piled up while it stalled is not the subscriber's doing.
      forgive: () => eventLoopStalls.recovering(),
      onOverflow: () => {
        this.stats.dropped++;
        this.p.metrics.subscribersDropped.inc({ reason: 'SUBSCRIBER_TOO_SLOW' });
        options.onOverflow?.();
      },
    });
    this.watching(+1);
    queue.onEnd(() => this.watching(-1));
    return queue;
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
}

/** Each item of `source` expanded into zero or more values, read one at a time. */
function flatten<T, U>(source: AsyncIterableIterator<T>, expand: (item: T) => U[]): AsyncIterableIterator<U> {
  let buffer: U[] = [];
  let at = 0;
  const iterator: AsyncIterableIterator<U> = {
    async next() {
      for (;;) {
        if (at < buffer.length) return { value: buffer[at++]!, done: false };
        const r = await source.next();
        if (r.done) return { value: undefined, done: true };
        buffer = expand(r.value);
        at = 0;
      }
    },
    return() {
      buffer = [];
      return source.return!().then(() => ({ value: undefined, done: true as const }));
    },
    throw(error?: unknown) {
      return source.throw!(error) as Promise<IteratorResult<U>>;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/** Each item of `source` mapped, skipping those mapped to null. */
function filterMap<T, U>(source: AsyncIterableIterator<T>, map: (item: T) => U | null): AsyncIterableIterator<U> {
  return flatten(source, (item) => {
    const value = map(item);
    return value === null ? [] : [value];
  });
}
