import { LockLostError } from '../../platform/locks/advisory-locks.js';
import type { Prisma, Quota, QuotaChange, Tenant } from '../../generated/prisma/client.js';
import type { Config } from '../../platform/config.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { theOnlyRow } from '../../platform/db/rows-in-order.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import type { Logger } from '../../platform/logger.js';
import type { TenantryMetrics } from '../../platform/metrics.js';
import { auditEventInsert, recordAuditEvent, type OperationContext } from '../audit/index.js';
import { UserError } from '../../platform/errors.js';
import {
  assertSettled,
  countBackendsOf,
  terminateNewestBackendsOf,
  validateText,
  type TenantAccess,
  type TenantChanges,
  type Visible,
} from '../tenants/index.js';
import type { CapacityPlanner } from './cluster-capacity.js';
import type { ConnectionLimits } from './connection-limits.js';
import { quotaOf, recordedQuotaChange, recordQuotaChange, type QuotaChangeInput, type RecordedQuotaChange, type RecordedQuotaRow } from './quota-change.sql.js';

export interface UpdateTenantQuotaInput {
  slug: string;
  maxConnections: number;
  reason?: string | null;
  /** End the newest sessions beyond the new limit (PostgreSQL itself never disconnects anyone). */
  terminateExcess?: boolean | null;
}

export interface UpdateTenantQuotaResult {
  tenant: Tenant;
  quota: Quota;
  change: QuotaChange | null;
  /** Sessions the role holds beyond the new limit (before any were ended). */
  connectionsOverLimit: number;
  terminatedPids: number[];
  /** What is not done yet, and will be (e.g. PostgreSQL was unreachable: the reconciler applies the limit). */
  warnings: string[];
}

/** Quota changes: recorded in the control database, applied to PostgreSQL, followed by the pooler. */
export class QuotaUpdates {
  constructor(
    private readonly p: {
      db: ControlClient;
      config: Pick<Config, 'QUOTA_MIN' | 'QUOTA_MAX'>;
      logger: Logger;
      metrics: TenantryMetrics;
      access: TenantAccess;
      locks: TenantLocks;
      changes: TenantChanges;
      capacity: CapacityPlanner;
      connectionLimits: ConnectionLimits;
    },
  ) {}

  /**
   * Changes a tenant's quota. The control database is the truth and goes first: the quota,
   * its QuotaChange and the audit event commit together (under the tenant's and the cluster's
   * capacity locks; a cut needs only the tenant's). Then PostgreSQL gets the limits (role and database CONNECTION LIMIT) -
   * always, even when the value did not change, so calling again repairs a limit that drifted.
   * A crash or an unreachable server between the two leaves a difference the reconciler finds
   * and repairs (LimitDrift, limit-drift.ts); the pool follows in the background (the pools module, on
   * `tenant.changed`; the payload's pool field is the pools module's).
   */
  async updateTenantQuota(op: OperationContext, input: UpdateTenantQuotaInput, visible: Visible): Promise<UpdateTenantQuotaResult> {
    const { config, db, locks, capacity, connectionLimits, changes, logger, metrics } = this.p;
    const newMax = input.maxConnections;
    const reason = input.reason == null || input.reason.trim() === '' ? null : validateText(input.reason, 'reason', 500);
    if (!Number.isInteger(newMax) || newMax < config.QUOTA_MIN || newMax > config.QUOTA_MAX) {
      throw new UserError('QUOTA_OUT_OF_RANGE', `maxConnections must be between ${config.QUOTA_MIN} and ${config.QUOTA_MAX}`, 'maxConnections');
    }

    const done = await this.p.access.withTenant(
      input.slug,
      visible,
      async (tenant, cluster, old) => {
        assertSettled(tenant, 'a quota change');
        // The tenant's lock keeps its quota still; only a raise competes for the cluster's capacity
        // (with provisions and other raises) and takes the capacity lock. A cut only frees capacity:
        // a raise that read the sum before it is merely cautious. `old` was read under the lock.
        const change: QuotaChangeInput = { tenantId: tenant.id, actor: op.actor, oldMaxConnections: old.maxConnections, newMaxConnections: newMax, reason };
        const record = async (): Promise<RecordedQuotaChange> => {
          const audited = (from: Prisma.Sql) =>
            auditEventInsert(op, { category: 'quota', action: 'quota.updated', tenant, subject: tenant.roleName, metadata: { oldMaxConnections: old.maxConnections, newMaxConnections: newMax, reason } }, from);
          const rows = await db.$queryRaw<RecordedQuotaRow[]>(recordQuotaChange(change, audited));
          return recordedQuotaChange(theOnlyRow(rows, `recording the quota of ${tenant.slug}`), change);
        };
        let recorded: { quota: Quota; change: QuotaChange | null };
        if (old.maxConnections === newMax) recorded = { quota: old, change: null };
        else if (newMax < old.maxConnections) recorded = await record();
        else {
          recorded = await locks.underCapacityLock(cluster, async () => {
            await capacity.assertWithinCapacity(cluster, { tenantId: tenant.id, slug: tenant.slug, quota: newMax });
            return record();
          });
        }
        if (recorded.change) metrics.quotaUpdates.inc();
        // The pool follows the recorded quota, outside the tenant's lock, while PostgreSQL takes
        // the new limits (either order converges; a later change publishes its own). It starts
        // at once: it follows what is committed, whether or not this request keeps its lock.
        // (It never rejects: TenantChanges waits for its listeners, whose failures are logged.)
        const settled = recorded.change ? changes.committed(tenant.id, { pool: true, health: false }) : Promise.resolve();
        await locks.nextStep('quota.recorded', tenant.slug);

        const warnings: string[] = [];
        let connectionsOverLimit = 0;
        let terminatedPids: number[] = [];
        try {
          const [, { rows }] = await Promise.all([connectionLimits.applyConnectionLimits(cluster, tenant, newMax), cluster.query<{ n: number }>(countBackendsOf, [tenant.roleName])]);
          await locks.nextStep('quota.applied', tenant.slug);
          connectionsOverLimit = Math.max(0, (rows[0]?.n ?? 0) - newMax);
          if (input.terminateExcess && connectionsOverLimit > 0) {
            // Recorded before it happens: no session is ended without its audit event.
            await recordAuditEvent(db, op, { category: 'quota', action: 'quota.excess.terminating', tenant, subject: tenant.roleName, metadata: { count: connectionsOverLimit, maxConnections: newMax } });
            const ended = await cluster.query<{ pid: number; terminated: boolean }>(terminateNewestBackendsOf, [tenant.roleName, connectionsOverLimit]);
            terminatedPids = ended.rows.filter((r) => r.terminated).map((r) => r.pid);
            await recordAuditEvent(db, op, { category: 'quota', action: 'quota.excess.terminated', tenant, subject: tenant.roleName, metadata: { pids: terminatedPids, maxConnections: newMax } });
          }
        } catch (err) {
          if (err instanceof UserError || err instanceof LockLostError) throw err;
          logger.warn({ err, tenant: tenant.slug }, 'applying a recorded quota to PostgreSQL failed; the reconciler will');
          warnings.push(`the quota is recorded, but PostgreSQL did not take the new limit yet (${(err as Error).message}); the reconciler applies it within RECOVERY_INTERVAL_MS`);
        }

        return { result: { tenant, ...recorded, connectionsOverLimit, terminatedPids, warnings }, settled };
      },
      async (tenantId: string) => {
        const [quota] = await db.$queryRaw<Quota[]>(quotaOf(tenantId));
        if (!quota) throw new Error(`tenant ${input.slug} has no quota row`);
        return quota;
      },
    );
    await done.settled;
    return done.result;
  }
}
