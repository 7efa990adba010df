import { setTimeout as delay } from 'node:timers/promises';
import Emittery from 'emittery';
import type { Logger } from './logger.js';

/**
 * What one module tells the others inside this process, so that none calls another's
 * internals: a module that must react to a change subscribes here (cross-replica messages go
 * on the EventBus instead).
 */
export interface DomainEventMap {
  /**
   * A tenant's records changed and were committed. `pool`: its pool must follow (the pools
   * module applies it); `inventory`: its database changed (the health module takes a fresh look);
   * `health`: what readiness judges of it may have changed (its status or records: all but a
   * quota change), so readiness reads the tenant again.
   */
  'tenant.changed': { tenantId: string; pool: boolean; inventory: boolean; health: boolean };
  /** The inventory looked at one tenant, or finished a pass over the fleet (tenantId null). */
  'inventory.checked': { tenantId: string | null };
  /**
   * A cluster was registered, changed (URL, status, labels, cap) or removed: per-cluster duties
   * (usage sampler, readiness, pool sync) start, follow or stop for it.
   */
  'cluster.changed': { clusterId: string; removed: boolean };
  /** Whether the pooler's configuration can be written changed. */
  'pooler.writable': { writable: boolean };
}

/**
 * Typed in-process events on emittery: `publish` resolves once every listener has finished (a
 * listener's failure is logged, never the publisher's problem), so a publisher may wait a
 * bounded time for the reaction (a mutation waits up to POOL_APPLY_WAIT_MS for its pool).
 */
export class DomainEvents {
  private readonly emitter = new Emittery<DomainEventMap>();

  constructor(private readonly logger: Logger) {}

  subscribe<E extends keyof DomainEventMap>(event: E, listener: (payload: DomainEventMap[E]) => void | Promise<void>): () => void {
    return this.emitter.on(event, async (payload) => {
      try {
        await listener(payload);
      } catch (err) {
        this.logger.warn({ err, event }, 'a listener of a domain event failed');
      }
    });
  }

  publish<E extends keyof DomainEventMap>(event: E, payload: DomainEventMap[E]): Promise<void> {
    return this.emitter.emit(event, payload);
  }

  /** Publishes and waits for the listeners at most `waitMs` (they go on in the background). */
  async publishAndWait<E extends keyof DomainEventMap>(event: E, payload: DomainEventMap[E], waitMs: number): Promise<void> {
    const waited = new AbortController();
    await Promise.race([this.publish(event, payload), delay(waitMs, undefined, { ref: false, signal: waited.signal })]);
    waited.abort();
  }
}
