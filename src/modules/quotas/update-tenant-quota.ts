import { LockLostError } from '../../platform/locks/advisory-locks.js';
import type { Pool, Quota, QuotaChange, Tenant } from '../../generated/prisma/client.js';
import { countBackendsOf, terminateNewestBackendsOf } from '../tenants/backends.sql.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { UserError } from '../../platform/errors.js';
import { nextStep, underCapacityLock } from '../../platform/locks/locking.js';
import { afterCommit } from '../tenants/after-commit.js';
import { validateText } from '../tenants/names.js';
import { assertSettled, withTenant, type Visible } from '../tenants/tenant-access.js';
import { applyConnectionLimits } from './connection-limits.js';
import { assertWithinCapacity } from './cluster-capacity.js';

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
  pool: Pool | null;
  /** What is not done yet, and will be (e.g. PostgreSQL was unreachable: the reconciler applies the limit). */
  warnings: string[];
}

/**
 * Changes a tenant's quota. The control database is the truth and goes first: the quota,
 * its QuotaChange and the audit event commit together (under the tenant's and the cluster's
 * capacity locks; a cut needs only the tenant's). Then PostgreSQL gets the limits (role and database CONNECTION LIMIT) -
 * always, even when the value did not change, so calling again repairs a limit that drifted.
 * A crash or an unreachable server between the two leaves a difference the reconciler finds
 * and repairs (src/domain/tenants/cluster-state.ts); the pool follows in the background.
 */
export async function updateTenantQuota(deps: Deps, op: OperationContext, input: UpdateTenantQuotaInput, visible: Visible): Promise<UpdateTenantQuotaResult> {
  const { config } = deps;
  const newMax = input.maxConnections;
  const reason = input.reason == null || input.reason.trim() === '' ? null : validateText(input.reason, 'reason', 500);
  if (!Number.isInteger(newMax) || newMax < config.QUOTA_MIN || newMax > config.QUOTA_MAX) {
    throw new UserError('QUOTA_OUT_OF_RANGE', `maxConnections must be between ${config.QUOTA_MIN} and ${config.QUOTA_MAX}`, 'maxConnections');
  }

  const done = await withTenant(deps, input.slug, visible, async (tenant, cluster) => {
    assertSettled(tenant, 'a quota change');
    // The tenant's lock keeps its quota still; only a raise competes for the cluster's capacity
    // (with provisions and other raises) and takes the capacity lock. A cut only frees capacity:
    // a raise that read the sum before it is merely cautious.
    const old = await deps.db.quota.findUniqueOrThrow({ where: { tenantId: tenant.id } });
    const record = () =>
      deps.db.$transaction(async (tx) => {
        const quota = await tx.quota.update({ where: { tenantId: tenant.id }, data: { maxConnections: newMax, updatedBy: op.actor, updatedAt: new Date() } });
        const change = await tx.quotaChange.create({
          data: { tenantId: tenant.id, actor: op.actor, oldMaxConnections: old.maxConnections, newMaxConnections: newMax, reason },
        });
        // Touching the tenant row tells the samplers' rosters that its limit moved.
        await tx.tenant.update({ where: { id: tenant.id }, data: { updatedAt: new Date() } });
        await recordAuditEvent(tx, op, {
          category: 'quota',
          action: 'quota.updated',
          tenant,
          subject: tenant.roleName,
          metadata: { oldMaxConnections: old.maxConnections, newMaxConnections: newMax, reason },
        });
        return { quota, change };
      });
    let recorded: { quota: Quota; change: QuotaChange | null };
    if (old.maxConnections === newMax) recorded = { quota: old, change: null };
    else if (newMax < old.maxConnections) recorded = await record();
    else {
      recorded = await underCapacityLock(deps, cluster, async () => {
        await assertWithinCapacity(deps, cluster, { tenantId: tenant.id, slug: tenant.slug, quota: newMax });
        return record();
      });
    }
    if (recorded.change) deps.metrics.quotaUpdates.inc();
    await nextStep(deps, 'quota.recorded', tenant.slug);

    const warnings: string[] = [];
    let connectionsOverLimit = 0;
    let terminatedPids: number[] = [];
    try {
      await applyConnectionLimits(deps, cluster, tenant, newMax);
      await nextStep(deps, 'quota.applied', tenant.slug);
      const { rows } = await cluster.query<{ n: number }>(countBackendsOf, [tenant.roleName]);
      connectionsOverLimit = Math.max(0, (rows[0]?.n ?? 0) - newMax);
      if (input.terminateExcess && connectionsOverLimit > 0) {
        // Recorded before it happens: no session is ended without its audit event.
        await recordAuditEvent(deps.db, op, { category: 'quota', action: 'quota.excess.terminating', tenant, subject: tenant.roleName, metadata: { count: connectionsOverLimit, maxConnections: newMax } });
        const ended = await cluster.query<{ pid: number; terminated: boolean }>(terminateNewestBackendsOf, [tenant.roleName, connectionsOverLimit]);
        terminatedPids = ended.rows.filter((r) => r.terminated).map((r) => r.pid);
        await recordAuditEvent(deps.db, op, { category: 'quota', action: 'quota.excess.terminated', tenant, subject: tenant.roleName, metadata: { pids: terminatedPids, maxConnections: newMax } });
      }
    } catch (err) {
      if (err instanceof UserError || err instanceof LockLostError) throw err;
      deps.logger.warn({ err, tenant: tenant.slug }, 'applying a recorded quota to PostgreSQL failed; the reconciler will');
      warnings.push(`the quota is recorded, but PostgreSQL did not take the new limit yet (${(err as Error).message}); the reconciler applies it within RECOVERY_INTERVAL_MS`);
    }

    // The pooler follows once the tenant's lock is let go (others may change it meanwhile).
    const settled = recorded.change ? afterCommit(deps, { tenantId: tenant.id, pool: true }) : Promise.resolve();
    return { result: { tenant, ...recorded, connectionsOverLimit, terminatedPids, warnings }, settled };
  });
  await done.settled;
  const pool = await deps.db.pool.findUnique({ where: { tenantId: done.result.tenant.id } });
  return { ...done.result, pool };
}
