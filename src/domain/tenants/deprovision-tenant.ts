import { withAdvisoryLock } from '../../db/advisory-lock.js';
import type { Tenant } from '../../generated/prisma/client.js';
import { terminateBackendsOf } from '../../sql/backends.sql.js';
import { dropDatabase } from '../../sql/databases.sql.js';
import { disableLogin, dropRole, roleExists } from '../../sql/roles.sql.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../deps.js';
import { UserError } from '../errors.js';
import { tenantLockName } from './tenant-lock.js';

/**
 * Ends a tenant's sessions, drops its database and role, and keeps its row
 * (DEPROVISIONED), quota history and audit trail. Its API keys are revoked.
 */
export async function deprovisionTenant(deps: Deps, op: OperationContext, input: { slug: string; confirm: string }, visible: (t: Tenant) => boolean): Promise<Tenant> {
  const found = await deps.db.tenant.findUnique({ where: { slug: input.slug } });
  if (!found || !visible(found)) throw new UserError('NOT_FOUND', `no tenant ${input.slug}`, 'slug');
  if (input.confirm !== input.slug) {
    throw new UserError('CONFIRMATION_MISMATCH', 'confirm must repeat the slug of the tenant to deprovision', 'confirm');
  }
  if (found.status === 'DEPROVISIONED') return found;
  const cluster = await deps.clusters.get(found.clusterId);

  return withAdvisoryLock(deps.controlPool, tenantLockName(cluster.id, found.databaseName), async () => {
    let tenant = await deps.db.tenant.update({ where: { id: found.id }, data: { status: 'DEPROVISIONING' } });
    await recordAuditEvent(deps.db, op, { category: 'tenant', action: 'tenant.deprovision.started', tenant, subject: tenant.databaseName });

    // The pool goes first (the tenant is no longer ACTIVE), so the pooler holds no server
    // connections into a database being dropped.
    await deps.pools.sync();
    const role = await cluster.query(roleExists, [tenant.roleName]);
    if (role.rowCount) await cluster.query(disableLogin(tenant.roleName));
    const { rows } = await cluster.query<{ terminated: number }>(terminateBackendsOf, [tenant.roleName, tenant.databaseName]);
    await cluster.query(dropDatabase(tenant.databaseName));
    await cluster.query(dropRole(tenant.roleName));

    let revokedKeys: string[] = [];
    tenant = await deps.db.$transaction(async (tx) => {
      const t = await tx.tenant.update({ where: { id: found.id }, data: { status: 'DEPROVISIONED', deprovisionedAt: new Date(), provisionStep: null } });
      const revoked = await tx.apiKey.updateManyAndReturn({ where: { tenantId: t.id, revokedAt: null }, data: { revokedAt: new Date() }, select: { id: true } });
      await recordAuditEvent(tx, op, {
        category: 'tenant',
        action: 'tenant.deprovisioned',
        tenant: t,
        subject: t.databaseName,
        metadata: { terminatedBackends: rows[0]?.terminated ?? 0, revokedApiKeys: revoked.length },
      });
      revokedKeys = revoked.map((k) => k.id);
      return t;
    });
    deps.events.publishKeysRevoked(revokedKeys);
    return tenant;
  });
}
