/** How long a client is told to wait (Retry-After) when it reaches a server that is stopping. */
export const SHUTTING_DOWN_RETRY_AFTER_SECONDS = 5;

/** The GraphQL error of a request or operation refused because the server is stopping. */
export const shuttingDownError = {
  message: `Tenantry is shutting down: retry in ${SHUTTING_DOWN_RETRY_AFTER_SECONDS} s (another replica, or this one once restarted)`,
  extensions: { code: 'SHUTTING_DOWN', retryAfterSeconds: SHUTTING_DOWN_RETRY_AFTER_SECONDS },
} as const;

/**
 * The requests and graphql-ws operations under way, which a graceful stop lets finish
 * before anything they use is closed. Subscription streams are not counted: they do not
 * finish on their own (they are closed, without completing, once the rest has finished).
 * Once `close()` is called nothing new is admitted.
 */
export class InFlightWork {
  private readonly open = new Set<object>();
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  get accepting(): boolean {
    return !this.closed;
  }

  get size(): number {
    return this.open.size;
  }

  /** Counts `item` until `finish(item)`; false (not counted) once closed. */
  admit(item: object): boolean {
    if (this.closed) return false;
    this.open.add(item);
    return true;
  }

  /** No longer waited for (done, or turned into a subscription stream). Idempotent. */
  finish(item: object): void {
    if (!this.open.delete(item) || this.open.size > 0) return;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Admits nothing more; resolves true once what is under way has finished, false if `timeoutMs` passed first. */
  async close(timeoutMs: number): Promise<boolean> {
    this.closed = true;
    if (this.open.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([idle, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
