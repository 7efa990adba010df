import type { Tenant } from '../../generated/prisma/client.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { UserError } from '../../platform/errors.js';
import type { EventBus } from '../../platform/events/event-bus.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { ClusterRegistry } from '../clusters/index.js';
import { announceRevoked, revokeTenantKeys, type ApiKeyAuthenticator } from '../keys/index.js';
import { dropTenantObjects } from './drop-tenant-objects.js';
import type { TenantChanges } from './tenant-changes.js';
import { assertNotMoving } from './tenant-access.js';

/** Taking a tenant off its cluster for good, while its records stay. */
export class TenantDeprovisioning {
  constructor(
    private readonly p: {
      db: ControlClient;
      clusters: ClusterRegistry;
      locks: TenantLocks;
      changes: TenantChanges;
      /** This process's key cache, told at once of the tenant's revoked keys. */
      auth: ApiKeyAuthenticator;
      /** Every replica is told of them through the bus. */
      events: EventBus;
    },
  ) {}

  /**
   * Ends a tenant's sessions, drops its database and role, and keeps its row
   * (DEPROVISIONED), quota history and audit trail. Its API keys are revoked. The row turns
   * DEPROVISIONING (with its audit event) before anything is dropped, so a server that stops
   * half-way leaves a state recovery finishes.
   */
  async deprovisionTenant(op: OperationContext, input: { slug: string; confirm: string }, visible: (t: Tenant) => boolean): Promise<Tenant> {
    const { db, clusters, locks, changes } = this.p;
    const found = await db.tenant.findUnique({ where: { slug: input.slug } });
    if (!found || !visible(found)) throw new UserError('NOT_FOUND', `no tenant ${input.slug}`, 'slug');
    if (input.confirm !== input.slug) {
      throw new UserError('CONFIRMATION_MISMATCH', 'confirm must repeat the slug of the tenant to deprovision', 'confirm');
    }
    if (found.status === 'DEPROVISIONED') return found;
    return locks.underTenantLock(found, async () => {
      const current = await db.tenant.findUniqueOrThrow({ where: { id: found.id } });
      if (current.status === 'DEPROVISIONED') return current;
      await assertNotMoving(db, current);
      // Where it is now: a move may have finished while this call waited for the lock.
      const cluster = await clusters.get(current.clusterId);
      const tenant =
        current.status === 'DEPROVISIONING'
          ? current
          : await db.$transaction(async (tx) => {
              await recordAuditEvent(tx, op, { category: 'tenant', action: 'tenant.deprovision.started', tenant: current, subject: current.databaseName });
              return tx.tenant.update({ where: { id: current.id }, data: { status: 'DEPROVISIONING' } });
            });
      // The pool leaves first (the tenant is no longer ACTIVE), so the pooler stops handing out its database.
      await changes.committed(tenant.id, { pool: true });
      return this.finishDeprovisioning(op, cluster, tenant);
    });
  }

  /** The cluster part and the final record (the caller holds the tenant's lock); also run by recovery. */
  async finishDeprovisioning(op: OperationContext, cluster: ClusterAdmin, tenant: Tenant): Promise<Tenant> {
    const { db, locks } = this.p;
    await locks.nextStep('deprovision.recorded', tenant.slug);
    const { terminatedBackends } = await dropTenantObjects(cluster, tenant);
    await locks.nextStep('deprovision.dropped', tenant.slug);
    const { done, revokedKeyIds } = await db.$transaction(async (tx) => {
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
    announceRevoked(this.p, revokedKeyIds);
    return done;
  }
}
