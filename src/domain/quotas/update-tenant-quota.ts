import { withAdvisoryLock } from '../../db/advisory-lock.js';
import type { Pool, Quota, QuotaChange, Tenant } from '../../generated/prisma/client.js';
import { countBackendsOf, terminateNewestBackendsOf } from '../../sql/backends.sql.js';
import { setDatabaseConnectionLimit } from '../../sql/databases.sql.js';
import { setRoleConnectionLimit } from '../../sql/roles.sql.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../deps.js';
import { UserError } from '../errors.js';
import type { SyncOutcome } from '../pools/pool-sync.js';
import { assertSettled, withTenant, type Visible } from '../tenants/tenant-access.js';
import { assertWithinCapacity, capacityLockName } from './cluster-capacity.js';

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
  poolOutcome: SyncOutcome | null;
}

/**
 * Changes a tenant's quota where it is enforced, in this order of truth: PostgreSQL
 * (role and database CONNECTION LIMIT), then the control database (quota, QuotaChange,
 * audit event) — undoing the first if the second fails — then the pool, which may stay
 * PENDING when the pooler is down (the reconciler finishes it).
 */
export async function updateTenantQuota(deps: Deps, op: OperationContext, input: UpdateTenantQuotaInput, visible: Visible): Promise<UpdateTenantQuotaResult> {
  const { config } = deps;
  const newMax = input.maxConnections;
  const reason = input.reason?.trim().slice(0, 500) || null;

  const { cluster, ...result } = await withTenant(deps, input.slug, visible, (tenant, cluster) =>
    withAdvisoryLock(deps.controlPool, capacityLockName(cluster.id), async () => {
      if (!Number.isInteger(newMax) || newMax < config.QUOTA_MIN || newMax > config.QUOTA_MAX) {
        throw new UserError('QUOTA_OUT_OF_RANGE', `maxConnections must be between ${config.QUOTA_MIN} and ${config.QUOTA_MAX}`, 'maxConnections');
      }
      assertSettled(tenant, 'a quota change');
      const old = await deps.db.quota.findUniqueOrThrow({ where: { tenantId: tenant.id } });
      if (old.maxConnections === newMax) return { cluster, tenant, quota: old, change: null };
      if (newMax > old.maxConnections) await assertWithinCapacity(deps, cluster, { tenantId: tenant.id, slug: tenant.slug, quota: newMax });

      const applyLimits = async (limit: number) => {
        await cluster.query(setRoleConnectionLimit(tenant.roleName, limit));
        await cluster.query(setDatabaseConnectionLimit(tenant.databaseName, limit + config.CONNECTION_RESERVE));
      };
      await applyLimits(newMax);
      try {
        const recorded = await deps.db.$transaction(async (tx) => {
          const quota = await tx.quota.update({ where: { tenantId: tenant.id }, data: { maxConnections: newMax, updatedBy: op.actor, updatedAt: new Date() } });
          const change = await tx.quotaChange.create({
            data: { tenantId: tenant.id, actor: op.actor, oldMaxConnections: old.maxConnections, newMaxConnections: newMax, reason },
          });
          await recordAuditEvent(tx, op, {
            category: 'quota',
            action: 'quota.updated',
            tenant,
            subject: tenant.roleName,
            metadata: { oldMaxConnections: old.maxConnections, newMaxConnections: newMax, reason },
          });
          return { quota, change };
        });
        deps.metrics.quotaUpdates.inc();
        return { cluster, tenant, ...recorded };
      } catch (err) {
        // The control database did not take it: PostgreSQL goes back to what it records.
        await applyLimits(old.maxConnections).catch((undo) => deps.logger.error({ err: undo, tenant: tenant.slug }, 'restoring the old connection limit failed'));
        throw err;
      }
    }),
  );

  const { rows } = await cluster.query<{ n: number }>(countBackendsOf, [result.tenant.roleName]);
  const connectionsOverLimit = Math.max(0, (rows[0]?.n ?? 0) - result.quota.maxConnections);
  let terminatedPids: number[] = [];
  if (input.terminateExcess && connectionsOverLimit > 0) {
    const ended = await cluster.query<{ pid: number; terminated: boolean }>(terminateNewestBackendsOf, [result.tenant.roleName, connectionsOverLimit]);
    terminatedPids = ended.rows.filter((r) => r.terminated).map((r) => r.pid);
    await recordAuditEvent(deps.db, op, {
      category: 'quota',
      action: 'quota.excess.terminated',
      tenant: result.tenant,
      subject: result.tenant.roleName,
      metadata: { pids: terminatedPids, maxConnections: result.quota.maxConnections },
    });
  }

  const poolOutcome = result.change && deps.pools.enabled ? (await deps.pools.sync()).outcome : null;
  const pool = await deps.db.pool.findUnique({ where: { tenantId: result.tenant.id } });
  return { ...result, connectionsOverLimit, terminatedPids, pool, poolOutcome };
}
