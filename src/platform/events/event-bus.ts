import type { Logger } from '../logger.js';
import type { TenantryMetrics } from '../metrics.js';
import { SubscriberQueue } from '../streams/subscriber-queue.js';
import { redisTransport } from './redis-transport.js';
import { inProcessTransport, type BusLink, type Transport } from './transport.js';

/**
 * Where usage samples, demand, key revocations, operation and move progress travel between the
 * parts of a replica and between replicas: in process by default, through Redis when
 * REDIS_URL is set. Channel names carry a prefix (the control database's name by default),
 * so control planes sharing a Redis stay apart.
 *
 * Each replica listens to a topic once and fans out in process (UsageService), so a
 * listener count never grows with subscribers, and nothing here buffers: a listener runs
 * when the message arrives, and one that throws is logged, never the process's problem.
 */
/** Rows of long work that subscriptions follow, one topic per row (`<kind>:<id>`), counted by kind. */
export type WatchedRow = 'operation' | 'move';
const WATCHED_ROWS: ReadonlySet<string> = new Set<WatchedRow>(['operation', 'move']);

export class EventBus {
  private readonly stopWatching: (() => void)[] = [];

  private constructor(
    private readonly transport_: Transport,
    private readonly prefix: string,
    /** `redis` when messages travel between replicas, `in-process` otherwise. */
    readonly transport: 'redis' | 'in-process',
    private readonly logger: Logger,
    metrics: TenantryMetrics | undefined,
  ) {
    metrics?.eventBusUp.set(transport_.link().up ? 1 : 0);
    let droppedSinceDown = 0;
    let wasDown = false;
    this.stopWatching.push(
      transport_.onDropped((topic) => {
        droppedSinceDown++;
        // The kind of message: its topic's name, but one kind for every watched row's topic.
        const name = topic.slice(prefix.length + 1);
        const row = name.split(':', 1)[0]!;
        metrics?.eventBusDropped.inc({ kind: WATCHED_ROWS.has(row) ? row : name });
      }),
      transport_.onLink((link) => {
        metrics?.eventBusUp.set(link.up ? 1 : 0);
        if (link.up) {
          if (wasDown) logger.info({ dropped: droppedSinceDown }, 'event bus (Redis) reachable again: live usage from other replicas resumes');
          else logger.info('event bus (Redis) connected');
        } else {
          wasDown = true;
          droppedSinceDown = 0;
          logger.warn({ error: link.error }, 'event bus (Redis) unreachable: this replica hears no other replica (usage streams degraded, readiness reports it)');
        }
      }),
    );
  }

  static create(options: { redisUrl?: string; prefix: string; logger: Logger; metrics?: TenantryMetrics }): EventBus {
    const { redisUrl, prefix, logger, metrics } = options;
    if (!redisUrl) return new EventBus(inProcessTransport(), prefix, 'in-process', logger, metrics);
    return new EventBus(redisTransport(redisUrl, logger), prefix, 'redis', logger, metrics);
  }

  /** Whether this replica hears the others (always true in process). */
  get link(): BusLink {
    return this.transport_.link();
  }

  /** Runs when the link goes down or comes back. */
  onLink(listener: (link: BusLink) => void): () => void {
    return this.transport_.onLink(listener);
  }

  /** Listeners on this replica (they do not grow with subscribers: each part listens once). */
  get listenerCount(): number {
    return this.transport_.listenerCount();
  }

  private topic(name: string): string {
    return `${this.prefix}:${name}`;
  }

  private listen<T>(name: string, listener: (detail: T) => void): () => void {
    return this.transport_.listen(this.topic(name), (detail) => {
      try {
        listener(detail as T);
      } catch (err) {
        this.logger.error({ err, topic: name }, 'event listener failed');
      }
    });
  }

  /** A bounded iterable over one topic: when its reader falls `capacity` messages behind, the oldest are dropped. */
  private iterate<T>(name: string, capacity: number): AsyncIterable<T> {
    return {
      [Symbol.asyncIterator]: () => {
        const queue = new SubscriberQueue<T>({ capacity, overflow: 'drop-oldest' });
        const stop = this.listen<T>(name, (detail) => queue.push(detail));
        queue.onEnd(stop);
        return queue;
      },
    };
  }

  /** One message per cluster per sample (the usage module's UsageBatch): the tenants that changed or are due a heartbeat. */
  publishUsage<Batch extends object>(batch: Batch): void {
    this.transport_.publish(this.topic('usage:batch'), batch);
  }

  /** Every replica listens once (UsageService) and fans out to its own subscribers. */
  onUsage<Batch extends object>(listener: (batch: Batch) => void): () => void {
    return this.listen<Batch>('usage:batch', listener);
  }

  /** "Someone is watching": sent by any replica with subscribers, heard by the sampling leader. */
  publishDemand(replica: string): void {
    this.transport_.publish(this.topic('usage:demand'), { replica, at: Date.now() });
  }

  onDemand(listener: () => void): () => void {
    return this.listen('usage:demand', listener);
  }

  /**
   * "Send everything again": a replica whose link to the others came back missed samples,
   * and so did every replica when a leader's link came back; the leaders hear it and publish
   * every tenant in their next sample.
   */
  publishResync(replica: string): void {
    this.transport_.publish(this.topic('usage:resync'), { replica });
  }

  onResync(listener: () => void): () => void {
    return this.listen('usage:resync', listener);
  }

  /** These API keys were revoked: every replica ends the subscriptions and sockets they opened. */
  publishKeysRevoked(keyIds: string[]): void {
    if (keyIds.length) this.transport_.publish(this.topic('keys:revoked'), { keyIds });
  }

  keysRevoked(): AsyncIterable<{ keyIds: string[] }> {
    return this.iterate('keys:revoked', 1000);
  }

  /** A row of long work changed (a fleet operation's progress, a move's step or figures): its subscriptions re-read it. */
  publishRowChange(kind: WatchedRow, id: string): void {
    this.transport_.publish(this.topic(`${kind}:${id}`), { id });
  }

  /** A wake-up per change of the row; a reader that falls behind loses only wake-ups (it re-reads the row). */
  rowChanges(kind: WatchedRow, id: string): AsyncIterable<unknown> {
    return this.iterate(`${kind}:${id}`, 1);
  }

  close(): Promise<void> {
    for (const stop of this.stopWatching.splice(0)) stop();
    return this.transport_.close();
  }
}
