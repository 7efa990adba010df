import pLimit, { type LimitFunction } from 'p-limit';

/** Too many live reads are running and waiting on a cluster: the caller should retry shortly. */
export class LiveReadsBusyError extends Error {
  constructor(
    readonly concurrency: number,
    readonly queue: number,
  ) {
    super(
      `too many live reads in progress on this cluster (${concurrency} running, ${queue} waiting: LIVE_READ_CONCURRENCY, LIVE_READ_QUEUE); ` +
        'retry shortly, or read the recorded values (live: false)',
    );
    this.name = 'LiveReadsBusyError';
  }
}

/**
 * The shared budget for reads that go to a tenant's database or to pg_stat_activity when a
 * request asks (extensions(live: true), connections): at most `concurrency` at once per
 * cluster, at most `queue` waiting; beyond that a read is refused at once, so no burst of
 * requests can open more superuser connections than the budget or pile up without bound.
 */
export class LiveReadBudget {
  private readonly limits = new Map<string, LimitFunction>();
  /** Reads started and refused, for tests and logs. */
  readonly stats = { started: 0, refused: 0 };

  constructor(private readonly p: { concurrency: number; queue: number }) {}

  run<T>(clusterId: string, read: () => Promise<T>): Promise<T> {
    let limit = this.limits.get(clusterId);
    if (!limit) {
      limit = pLimit(this.p.concurrency);
      this.limits.set(clusterId, limit);
    }
    // Every slot taken and the queue full: refuse now rather than wait without bound. (A read
    // just handed to p-limit counts as pending until it starts, so the two are summed.)
    if (limit.activeCount + limit.pendingCount >= this.p.concurrency + this.p.queue) {
      this.stats.refused++;
      return Promise.reject(new LiveReadsBusyError(this.p.concurrency, this.p.queue));
    }
    return limit(() => {
      this.stats.started++;
      return read();
    });
  }
}
