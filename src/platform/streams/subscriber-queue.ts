/** Why a live subscription was ended by the server (the code reaches the client). */
export type SubscriptionEndCode = 'SUBSCRIBER_TOO_SLOW' | 'KEY_REVOKED' | 'KEY_EXPIRED';

/** A subscription ended by the server for a reason the subscriber should hear about. */
export class SubscriptionEndedError extends Error {
  constructor(
    readonly code: SubscriptionEndCode,
    message: string,
  ) {
    super(message);
    this.name = 'SubscriptionEndedError';
  }
}

export interface SubscriberQueueOptions {
  /** Items that may wait for the reader. */
  capacity: number;
  /**
   * When a push finds the queue full: `fail` ends the subscription (the reader gets a
   * SUBSCRIBER_TOO_SLOW error, `onOverflow` runs at once so the transport can be closed
   * without waiting for the reader); `drop-oldest` makes room (for wake-ups, where only
   * the latest matters).
   */
  overflow: 'fail' | 'drop-oldest';
  onOverflow?: () => void;
  /**
   * With `fail`: true while the server itself fell behind (it stalled, see
   * EventLoopStalls): a full queue then keeps growing, up to STALL_BACKLOG_FACTOR times
   * its capacity (then its oldest items go), and the reader is judged again only once the
   * server runs normally.
   */
  forgive?: () => boolean;
}

/** How far past its capacity a queue may grow with what piled up while the server stalled. */
export const STALL_BACKLOG_FACTOR = 8;

/**
 * The only buffer between a message arriving on a replica and one subscriber: bounded,
 * an async iterator the transport pulls from. `push` never waits and never throws, so a
 * subscriber that cannot keep up costs its own subscription, never the dispatcher.
 */
export class SubscriberQueue<T> implements AsyncIterableIterator<T> {
  private items: T[] = [];
  private waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;
  private state: 'open' | 'ending' | 'done' = 'open';
  private failure: Error | null = null;
  private readonly endListeners: (() => void)[] = [];

  constructor(private readonly options: SubscriberQueueOptions) {}

  get size(): number {
    return this.items.length;
  }

  get open(): boolean {
    return this.state === 'open';
  }

  /** Offers an item; false when the subscription is over (or just ended by this overflow). */
  push(item: T): boolean {
    if (this.state !== 'open') return false;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = null;
      resolve({ value: item, done: false });
      return true;
    }
    if (this.items.length >= this.options.capacity) {
      if (this.options.overflow === 'drop-oldest') {
        this.items.shift();
      } else if (this.options.forgive?.()) {
        if (this.items.length >= this.options.capacity * STALL_BACKLOG_FACTOR) this.items.shift();
      } else {
        this.fail(new SubscriptionEndedError('SUBSCRIBER_TOO_SLOW', `dropped: this subscriber fell ${this.options.capacity} messages behind`));
        this.options.onOverflow?.();
        return false;
      }
    }
    this.items.push(item);
    return true;
  }

  /** Puts an item first (a subscription's opening value); ignored once over. */
  unshift(item: T): void {
    if (this.state !== 'open') return;
    if (this.waiting) this.push(item);
    else this.items.unshift(item);
  }

  /** No more items: the reader gets what is queued, then the end. */
  end(): void {
    if (this.state !== 'open') return;
    this.stopAccepting('ending');
    if (this.items.length === 0) this.finish();
  }

  /** Over at once: what is queued is discarded and the reader's next call rejects with `error`. */
  fail(error: Error): void {
    if (this.state === 'done') return;
    this.items = [];
    this.failure = error;
    this.stopAccepting('ending');
    if (this.waiting) {
      const { reject } = this.waiting;
      this.waiting = null;
      this.failure = null;
      reject(error);
      this.finish();
    }
  }

  /** Runs once the queue stops taking items, however that happens (to unregister it). */
  onEnd(listener: () => void): void {
    if (this.state !== 'open') listener();
    else this.endListeners.push(listener);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.failure) {
      const error = this.failure;
      this.failure = null;
      this.finish();
      return Promise.reject(error);
    }
    if (this.items.length) {
      const value = this.items.shift()!;
      if (this.state === 'ending' && this.items.length === 0 && !this.failure) this.finish();
      return Promise.resolve({ value, done: false });
    }
    if (this.state !== 'open') {
      this.finish();
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.items = [];
    this.failure = null;
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.finish();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private stopAccepting(next: 'ending' | 'done'): void {
    const wasOpen = this.state === 'open';
    this.state = next;
    if (wasOpen) for (const listener of this.endListeners.splice(0)) listener();
  }

  private finish(): void {
    if (this.state === 'done') return;
    this.stopAccepting('done');
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = null;
      resolve({ value: undefined, done: true });
    }
  }
}
