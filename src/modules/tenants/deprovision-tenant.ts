import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { Tenant } from '../../generated/prisma/client.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { UserError } from '../../platform/errors.js';
import { nextStep, underTenantLock } from '../../platform/locks/locking.js';
import { afterCommit } from './after-commit.js';
import { dropTenantObjects } from './drop-tenant-objects.js';
import { announceRevoked, revokeTenantKeys } from '../keys/api-keys.js';

/**
 * Ends a tenant's sessions, drops its database and role, and keeps its row
 * (DEPROVISIONED), quota history and audit trail. Its API keys are revoked. The row turns
 * DEPROVISIONING (with its audit event) before anything is dropped, so a server that stops
 * half-way leaves a state recovery finishes.
 */
export async function deprovisionTenant(deps: Deps, op: OperationContext, input: { slug: string; confirm: string }, visible: (t: Tenant) => boolean): Promise<Tenant> {
  const found = await deps.db.tenant.findUnique({ where: { slug: input.slug } });
  if (!found || !visible(found)) throw new UserError('NOT_FOUND', `no tenant ${input.slug}`, 'slug');
  if (input.confirm !== input.slug) {
    throw new UserError('CONFIRMATION_MISMATCH', 'confirm must repeat the slug of the tenant to deprovision', 'confirm');
  }
  if (found.status === 'DEPROVISIONED') return found;
  const cluster = await deps.clusters.get(found.clusterId);

  return underTenantLock(deps, cluster, found, async () => {
    const current = await deps.db.tenant.findUniqueOrThrow({ where: { id: found.id } });
    if (current.status === 'DEPROVISIONED') return current;
    const tenant =
      current.status === 'DEPROVISIONING'
        ? current
        : await deps.db.$transaction(async (tx) => {
            await recordAuditEvent(tx, op, { category: 'tenant', action: 'tenant.deprovision.started', tenant: current, subject: current.databaseName });
            return tx.tenant.update({ where: { id: current.id }, data: { status: 'DEPROVISIONING' } });
          });
    // The pool leaves first (the tenant is no longer ACTIVE), so the pooler stops handing out its database.
    await afterCommit(deps, { tenantId: tenant.id, pool: true });
    return finishDeprovisioning(deps, op, cluster, tenant);
  });
}

/** The cluster part and the final record (the caller holds the tenant's lock); also run by recovery. */
export async function finishDeprovisioning(deps: Deps, op: OperationContext, cluster: ClusterAdmin, tenant: Tenant): Promise<Tenant> {
  await nextStep(deps, 'deprovision.recorded', tenant.slug);
  const { terminatedBackends } = await dropTenantObjects(cluster, tenant);
  await nextStep(deps, 'deprovision.dropped', tenant.slug);
  const { done, revokedKeyIds } = await deps.db.$transaction(async (tx) => {
    const t = await tx.tenant.update({ where: { id: tenant.id }, data: { status: 'DEPROVISIONED', deprovisionedAt: new Date(), provisionStep: null } });
    const revokedKeyIds = await revokeTenantKeys(tx, t.id);
    await tx.credentialHandoff.deleteMany({ where: { tenantId: t.id } });
    await recordAuditEvent(tx, op, {
      category: 'tenant',
      action: 'tenant.deprovisioned',
      tenant: t,
      subject: t.databaseName,
      metadata: { terminatedBackends, revokedApiKeys: revokedKeyIds.length },
    });
    return { done: t, revokedKeyIds };
  });
  announceRevoked(deps, revokedKeyIds);
  return done;
}
