import { Repeater, SlidingBuffer } from 'graphql-yoga';

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
  /** Runs when the reader first asks for an item: a subscriber registers itself then, so one that never reads holds nothing. */
  start?: () => void;
}

/** How far past its capacity a queue may grow with what piled up while the server stalled. */
export const STALL_BACKLOG_FACTOR = 8;

/**
 * The only buffer between a message arriving on a replica and one subscriber: a graphql-yoga
 * Repeater over a bounded backlog, which the transport pulls from (directly, or through
 * yoga's `pipe`/`map`/`filter`). `push` never waits and never throws, so a subscriber that
 * cannot keep up costs its own subscription, never the dispatcher. What is pushed before the
 * reader's first call waits in the backlog; `return()` ends it even then (a Repeater that
 * never started would not run its stop callbacks).
 */
export class SubscriberQueue<T> extends Repeater<T> {
  private readonly options: SubscriberQueueOptions;
  /** The Repeater's buffer: never full (a push never waits for the reader); past its capacity the oldest go. */
  private readonly backlog: SlidingBuffer;
  /** The Repeater's push and stop, once the reader started it. */
  private pushToReader: ((item: T) => unknown) | undefined;
  private stop: ((error?: unknown) => void) | undefined;
  private failure: Error | undefined;
  private accepting = true;
  private readonly endListeners: (() => void)[] = [];

  constructor(options: SubscriberQueueOptions) {
    const backlog = new SlidingBuffer(options.overflow === 'fail' ? options.capacity * STALL_BACKLOG_FACTOR : options.capacity);
    let self: SubscriberQueue<T> | undefined;
    // The executor runs at the reader's first call, long after `self` is set.
    super((push, stop) => self!.started(push, stop), backlog);
    self = this;
    this.options = options;
    this.backlog = backlog;
  }

  get size(): number {
    return this.backlog._q.length;
  }

  /** Offers an item; false when the subscription is over (or just ended by this overflow). */
  push(item: T): boolean {
    if (!this.accepting) return false;
    const { capacity, overflow, forgive, onOverflow } = this.options;
    // Past its capacity a `fail` queue grows only with what piled up while the server stalled.
    if (overflow === 'fail' && this.size >= capacity && !forgive?.()) {
      this.fail(new SubscriptionEndedError('SUBSCRIBER_TOO_SLOW', `dropped: this subscriber fell ${capacity} messages behind`));
      onOverflow?.();
      return false;
    }
    if (this.pushToReader) void this.pushToReader(item);
    else this.backlog.add(item);
    return true;
  }

  /** No more items: the reader gets what is queued, then the end. */
  end(): void {
    if (!this.accepting) return;
    this.close();
    this.stop?.();
  }

  /** Runs once the queue stops taking items, however that happens (to unregister it). */
  onEnd(listener: () => void): void {
    if (this.accepting) this.endListeners.push(listener);
    else listener();
  }

  override async return(value?: unknown): Promise<IteratorResult<T>> {
    this.close();
    // A failure nobody read yet is not the caller's problem: the reader left.
    return super.return(value).catch(() => ({ value: undefined, done: true as const }));
  }

  override throw(error: unknown): Promise<IteratorResult<T>> {
    this.close();
    return super.throw(error);
  }

  /** Over at once: what is queued is discarded and the reader's next call rejects with `error`. */
  private fail(error: Error): void {
    this.backlog._q = [];
    this.failure = error;
    this.close();
    this.stop?.(error);
  }

  private started(push: (item: T) => unknown, stop: (error?: unknown) => void): void {
    this.pushToReader = push;
    this.stop = stop;
    if (this.accepting) this.options.start?.();
    else stop(this.failure);
  }

  private close(): void {
    if (!this.accepting) return;
    this.accepting = false;
    for (const listener of this.endListeners.splice(0)) listener();
  }
}
