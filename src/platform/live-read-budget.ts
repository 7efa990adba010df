/** Too many live reads of one requester are running and waiting on a cluster: it should retry shortly. */
export class LiveReadsBusyError extends Error {
  constructor(
    readonly concurrency: number,
    readonly queue: number,
  ) {
    super(
      `too many live reads in progress on this cluster (${concurrency} running, and ${queue} of yours waiting: LIVE_READ_CONCURRENCY, LIVE_READ_QUEUE per tenant or admin key); ` +
        'retry shortly, or read the recorded values (live: false)',
    );
    this.name = 'LiveReadsBusyError';
  }
}

/** One cluster's slots, and the reads waiting for them by requester. */
interface ClusterSlots {
  running: number;
  /** Each requester's waiting reads, in order; the map's order is whose turn comes next. */
  waiting: Map<string, (() => void)[]>;
}

/**
 * The shared budget for reads that go to a tenant's database or to pg_stat_activity when a
 * request asks (extensions(live: true), connections): at most `concurrency` at once per
 * cluster, so no burst opens more superuser connections than that. It is shared fairly: each
 * requester (one tenant's keys together, or one admin key) may have at most `queue` reads
 * waiting, and a slot that comes free goes to the waiting requesters in turn, not first come
 * first served. One requester's flood is refused past its own queue and never fills another's,
 * and another's read waits for at most one read per requester ahead of it.
 */
export class LiveReadBudget {
  private readonly clusters = new Map<string, ClusterSlots>();
  /** Reads started, refused, and made to wait for their turn, for tests and logs. */
  readonly stats = { started: 0, refused: 0, queued: 0 };

  constructor(private readonly p: { concurrency: number; queue: number }) {}

  run<T>(clusterId: string, requester: string, read: () => Promise<T>): Promise<T> {
    const cluster: ClusterSlots = this.clusters.get(clusterId) ?? { running: 0, waiting: new Map() };
    this.clusters.set(clusterId, cluster);
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        cluster.running++;
        this.stats.started++;
        // A read that throws at once fails like one that rejects.
        new Promise<T>((started) => started(read()))
          .then(resolve, reject)
          .finally(() => {
            cluster.running--;
            this.handOut(cluster);
          });
      };
      // Nobody waiting and a slot free: no turn to take.
      if (cluster.waiting.size === 0 && cluster.running < this.p.concurrency) return start();
      const mine = cluster.waiting.get(requester) ?? [];
      if (mine.length >= this.p.queue) {
        this.stats.refused++;
        return reject(new LiveReadsBusyError(this.p.concurrency, this.p.queue));
      }
      mine.push(start);
      cluster.waiting.set(requester, mine);
      this.stats.queued++;
      this.handOut(cluster);
    });
  }

  /** Fills free slots, one read per requester in turn; a requester just served goes to the back. */
  private handOut(cluster: ClusterSlots): void {
    while (cluster.running < this.p.concurrency && cluster.waiting.size > 0) {
      const [requester, reads] = cluster.waiting.entries().next().value!;
      cluster.waiting.delete(requester);
      const next = reads.shift()!;
      if (reads.length > 0) cluster.waiting.set(requester, reads);
      next();
    }
  }
}
