import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import type { Logger } from '../../logger.js';
import type { UsageBatch } from '../usage/usage-sample.js';
import { SubscriberQueue } from '../usage/subscriber-queue.js';

type Listener = (detail: unknown) => void;

/** Where messages travel: a topic → listeners map in process, or Redis pub/sub. */
interface Transport {
  publish(topic: string, detail: unknown): void;
  listen(topic: string, listener: Listener): () => void;
  close(): Promise<void>;
}

/** Delivered on a later microtask, as Redis would deliver it: a publisher never runs its listeners' code. */
function inProcessTransport(): Transport {
  const listeners = new Map<string, Set<Listener>>();
  return {
    publish(topic, detail) {
      const set = listeners.get(topic);
      if (!set?.size) return;
      queueMicrotask(() => {
        for (const listener of set) listener(detail);
      });
    },
    listen(topic, listener) {
      const set = listeners.get(topic) ?? new Set<Listener>();
      listeners.set(topic, set);
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) listeners.delete(topic);
      };
    },
    close: async () => listeners.clear(),
  };
}

function redisTransport(url: string, logger: Logger): Transport {
  // No offline queue on the publishing side: while Redis is unreachable a message is
  // dropped at once (samples are replaced by the next one; revocations are re-checked),
  // instead of piling up in memory until it returns.
  const publishClient = new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: false });
  const subscribeClient = new Redis(url, { maxRetriesPerRequest: null });
  for (const client of [publishClient, subscribeClient]) client.on('error', (err) => logger.warn({ err: err.message }, 'Redis (event bus) unavailable'));
  const target = createRedisEventTarget({ publishClient, subscribeClient });
  return {
    publish(topic, detail) {
      if (publishClient.status !== 'ready') {
        logger.debug({ topic }, 'Redis not ready: message dropped');
        return;
      }
      target.dispatchEvent(new CustomEvent(topic, { detail }));
    },
    listen(topic, listener) {
      const callback = (event: Event) => listener((event as CustomEvent).detail);
      target.addEventListener(topic, callback);
      return () => target.removeEventListener(topic, callback);
    },
    close: async () => {
      subscribeClient.disconnect();
      publishClient.disconnect();
    },
  };
}

/**
 * Where usage samples, demand, key revocations and operation progress travel between the
 * parts of a replica and between replicas: in process by default, through Redis when
 * REDIS_URL is set. Channel names carry a prefix (the control database's name by default),
 * so control planes sharing a Redis stay apart.
 *
 * Each replica listens to a topic once and fans out in process (UsageService), so a
 * listener count never grows with subscribers, and nothing here buffers: a listener runs
 * when the message arrives, and one that throws is logged, never the process's problem.
 */
export class EventBus {
  private constructor(
    private readonly transport_: Transport,
    private readonly prefix: string,
    /** `redis` when messages travel between replicas, `in-process` otherwise. */
    readonly transport: 'redis' | 'in-process',
    private readonly logger: Logger,
  ) {}

  static create(options: { redisUrl?: string; prefix: string; logger: Logger }): EventBus {
    if (!options.redisUrl) return new EventBus(inProcessTransport(), options.prefix, 'in-process', options.logger);
    return new EventBus(redisTransport(options.redisUrl, options.logger), options.prefix, 'redis', options.logger);
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

  /** One message per cluster per sample: the tenants that changed or are due a heartbeat. */
  publishUsage(batch: UsageBatch): void {
    this.transport_.publish(this.topic('usage:batch'), batch);
  }

  /** Every replica listens once (UsageService) and fans out to its own subscribers. */
  onUsage(listener: (batch: UsageBatch) => void): () => void {
    return this.listen('usage:batch', listener);
  }

  /** "Someone is watching": sent by any replica with subscribers, heard by the sampling leader. */
  publishDemand(replica: string): void {
    this.transport_.publish(this.topic('usage:demand'), { replica, at: Date.now() });
  }

  onDemand(listener: () => void): () => void {
    return this.listen('usage:demand', listener);
  }

  /** These API keys were revoked: every replica ends the subscriptions and sockets they opened. */
  publishKeysRevoked(keyIds: string[]): void {
    if (keyIds.length) this.transport_.publish(this.topic('keys:revoked'), { keyIds });
  }

  keysRevoked(): AsyncIterable<{ keyIds: string[] }> {
    return this.iterate('keys:revoked', 1000);
  }

  /** A fleet operation moved (its row in the control database is the value). */
  publishOperation(operationId: string): void {
    this.transport_.publish(this.topic(`operation:${operationId}`), { operationId });
  }

  /** A wake-up per progress event; a reader that falls behind loses only wake-ups (it re-reads the row). */
  operation(operationId: string): AsyncIterable<unknown> {
    return this.iterate(`operation:${operationId}`, 1);
  }

  close(): Promise<void> {
    return this.transport_.close();
  }
}
