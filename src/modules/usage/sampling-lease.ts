import { performance } from 'node:perf_hooks';
import type { ControlClient } from '../../platform/db/control-client.js';

/** What a write must check to be the current leader's (see UsageHistory.write). */
export interface LeaseFence {
  clusterId: string;
  holder: string;
  epoch: number;
}

/**
 * Leadership of one cluster's sampling: a row in usage_leases that expires, on the control
 * database's clock. The holder renews it every interval; anyone takes it once it has
 * expired, with a new epoch from a sequence. A leader that hangs (SIGSTOP, a stalled event
 * loop) loses it after `ttlMs`, and learns so at its next renewal, which comes before it
 * publishes anything. Renewing a lease that is still ours writes to an unlogged table;
 * a replica that is not the leader sends an UPDATE that matches nothing (no write).
 */
export class SamplingLease {
  epoch: number | null = null;
  /** Local monotonic time until which the lease is surely ours (from before the renewal was sent). */
  private validUntil = 0;

  constructor(
    private readonly p: {
      db: ControlClient;
      clusterId: string;
      holder: string;
      ttlMs: number;
    },
  ) {}

  get fence(): LeaseFence | null {
    return this.epoch === null ? null : { clusterId: this.p.clusterId, holder: this.p.holder, epoch: this.epoch };
  }

  /** Takes the lease if it is free or expired, or renews it if it is ours: one statement. */
  async acquireOrRenew(): Promise<boolean> {
    const sentAt = performance.now();
    const { clusterId, holder, ttlMs } = this.p;
    const rows = await this.p.db.$queryRaw<{ epoch: number }[]>`
      WITH renewed AS (
        UPDATE usage_leases
        SET expires_at = now() + ${ttlMs}::int * interval '1 millisecond',
            epoch = CASE WHEN holder = ${holder} THEN epoch ELSE nextval('usage_lease_epoch')::int END,
            holder = ${holder}
        WHERE cluster_id = ${clusterId}::uuid AND (holder = ${holder} OR expires_at < now())
        RETURNING epoch
      ), created AS (
        INSERT INTO usage_leases (cluster_id, holder, epoch, expires_at)
        SELECT ${clusterId}::uuid, ${holder}, nextval('usage_lease_epoch')::int, now() + ${ttlMs}::int * interval '1 millisecond'
        WHERE NOT EXISTS (SELECT 1 FROM usage_leases WHERE cluster_id = ${clusterId}::uuid)
        ON CONFLICT (cluster_id) DO NOTHING
        RETURNING epoch
      )
      SELECT epoch FROM renewed UNION ALL SELECT epoch FROM created`;
    const epoch = rows[0]?.epoch;
    if (epoch === undefined) {
      this.drop();
      return false;
    }
    this.epoch = epoch;
    this.validUntil = sentAt + ttlMs * 0.9;
    return true;
  }

  /** Whether the lease is still ours by the local clock (checked right before publishing). */
  stillValid(): boolean {
    return this.epoch !== null && performance.now() < this.validUntil;
  }

  /** Gives the lease up (a clean stop), so another replica takes over at its next try. */
  async release(): Promise<void> {
    if (this.epoch === null) return;
    this.drop();
    await this.p.db.$executeRaw`
      UPDATE usage_leases SET expires_at = '-infinity' WHERE cluster_id = ${this.p.clusterId}::uuid AND holder = ${this.p.holder}`;
  }

  drop(): void {
    this.epoch = null;
    this.validUntil = 0;
  }
}
