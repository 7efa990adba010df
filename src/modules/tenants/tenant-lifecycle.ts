import type { Tenant } from '../../generated/prisma/client.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import { terminateTenantSessions } from './backends.sql.js';
import type { ConnectionStrings } from './connection-strings.js';
import { validateIdempotencyKey, type CredentialHandoffs } from './credential-handoff.js';
import { newCredentials } from './credentials.js';
import { validateText } from './names.js';
import { disableLogin, enableLogin, readOnlyRolesOf, setRolePassword } from './roles.sql.js';
import { assertSettled, type TenantAccess, type Visible } from './tenant-access.js';
import type { TenantChanges } from './tenant-changes.js';

async function readOnlyRoles(cluster: ClusterAdmin, tenantRole: string): Promise<string[]> {
  return (await cluster.query<{ rolname: string }>(readOnlyRolesOf, [tenantRole])).rows.map((r) => r.rolname);
}

/** Suspending, resuming, and new credentials for a tenant's role. */
export class TenantLifecycle {
  constructor(
    private readonly p: {
      db: ControlClient;
      access: TenantAccess;
      locks: TenantLocks;
      changes: TenantChanges;
      connectionStrings: ConnectionStrings;
      handoffs: CredentialHandoffs;
    },
  ) {}

  /**
   * Suspends a tenant: its role may no longer log in, its sessions end (unless asked not
   * to), its pool leaves the pooler. Data, quota and credentials stay; resumeTenant undoes it.
   * The status and its audit event commit first; a crash before PostgreSQL follows leaves a
   * login the reconciler finds and disables.
   */
  async suspendTenant(op: OperationContext, input: { slug: string; reason?: string | null; terminateConnections?: boolean | null }, visible: Visible): Promise<Tenant> {
    const { db, access, locks, changes } = this.p;
    const reason = input.reason == null || input.reason.trim() === '' ? null : validateText(input.reason, 'reason', 500);
    const done = await access.withTenant(input.slug, visible, async (tenant, cluster) => {
      assertSettled(tenant, 'suspending');
      const terminate = input.terminateConnections !== false;
      const suspended =
        tenant.status === 'SUSPENDED'
          ? tenant
          : await db.$transaction(async (tx) => {
              await recordAuditEvent(tx, op, { category: 'tenant', action: 'tenant.suspended', tenant, subject: tenant.roleName, metadata: { reason, terminateConnections: terminate } });
              return tx.tenant.update({ where: { id: tenant.id }, data: { status: 'SUSPENDED' } });
            });
      await locks.nextStep('suspend.recorded', tenant.slug);
      // Applied again when already suspended: repairs a login left enabled.
      await cluster.query(disableLogin(tenant.roleName));
      for (const role of await readOnlyRoles(cluster, tenant.roleName)) await cluster.query(disableLogin(role));
      if (terminate && tenant.status === 'ACTIVE') await cluster.query(terminateTenantSessions, [tenant.roleName]);
      return { suspended, settled: tenant.status === 'ACTIVE' ? changes.committed(tenant.id, { pool: true }) : Promise.resolve() };
    });
    await done.settled;
    return done.suspended;
  }

  async resumeTenant(op: OperationContext, input: { slug: string }, visible: Visible): Promise<Tenant> {
    const { db, access, locks, changes } = this.p;
    const done = await access.withTenant(input.slug, visible, async (tenant, cluster) => {
      assertSettled(tenant, 'resuming');
      const resumed =
        tenant.status === 'ACTIVE'
          ? tenant
          : await db.$transaction(async (tx) => {
              await recordAuditEvent(tx, op, { category: 'tenant', action: 'tenant.resumed', tenant, subject: tenant.roleName });
              return tx.tenant.update({ where: { id: tenant.id }, data: { status: 'ACTIVE' } });
            });
      await locks.nextStep('resume.recorded', tenant.slug);
      await cluster.query(enableLogin(tenant.roleName));
      // Revoked ones are gone; expired ones stay refused by their VALID UNTIL.
      for (const role of await readOnlyRoles(cluster, tenant.roleName)) await cluster.query(enableLogin(role));
      return { resumed, settled: tenant.status === 'SUSPENDED' ? changes.committed(tenant.id, { pool: true }) : Promise.resolve() };
    });
    await done.settled;
    return done.resumed;
  }

  /**
   * A new password for the tenant's role (as a SCRAM verifier), returned once in connection
   * strings; sessions already open keep working. With an idempotency key the new password is
   * kept for a short window (encrypted under the key): repeating the call with the same key
   * returns the same credentials instead of rotating again, and a rotation interrupted after
   * it was recorded is completed by recovery, so the kept password is the one that works.
   */
  async rotateTenantCredentials(
    op: OperationContext,
    input: { slug: string; idempotencyKey?: string | null },
    visible: Visible,
  ): Promise<{ tenant: Tenant; connectionString: string; pooledConnectionString: string | null }> {
    const { db, access, locks, connectionStrings, handoffs } = this.p;
    const key = validateIdempotencyKey(input.idempotencyKey);
    return access.withTenant(input.slug, visible, async (tenant, cluster) => {
      assertSettled(tenant, 'a rotation');
      const kept = key ? await handoffs.findHandoff(tenant.id, key) : null;
      let password: string;
      if (kept?.purpose === 'ROTATE') {
        // The same call again (its first answer was lost): finish it if needed, answer the same.
        if (kept.verifier) {
          await cluster.query(setRolePassword(tenant.roleName, kept.verifier));
          await db.credentialHandoff.update({ where: { id: kept.id }, data: { appliedAt: new Date(), verifier: null } });
        }
        password = kept.password;
      } else {
        const { password: fresh, verifier } = await newCredentials();
        password = fresh;
        await db.$transaction(async (tx) => {
          await recordAuditEvent(tx, op, { category: 'security', action: 'tenant.credentials.rotated', tenant, subject: tenant.roleName, metadata: { idempotencyKey: key !== null } });
          if (key) await handoffs.storeHandoff(tx, { tenantId: tenant.id, purpose: 'ROTATE', key, password, verifier });
        });
        await locks.nextStep('rotation.recorded', tenant.slug);
        await cluster.query(setRolePassword(tenant.roleName, verifier));
        if (key) await db.credentialHandoff.updateMany({ where: { tenantId: tenant.id, purpose: 'ROTATE', verifier }, data: { appliedAt: new Date(), verifier: null } });
      }
      const strings = connectionStrings.tenantConnectionStrings(cluster, tenant, password);
      return { tenant, connectionString: strings.direct, pooledConnectionString: strings.pooled };
    });
  }
}
