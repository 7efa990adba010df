import type { Tenant } from '../../generated/prisma/client.js';
import { setRolePassword } from '../tenants/roles.sql.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { tryTenantLock } from '../../platform/locks/locking.js';
import { afterCommit } from '../tenants/after-commit.js';
import { reconcileClusterState, type ClusterStateRepair } from '../quotas/limit-drift.js';
import { finishDeprovisioning } from '../tenants/deprovision-tenant.js';
import { rollBackProvisioning } from './roll-back-provisioning.js';

const OP: OperationContext = { actor: 'recovery', correlationId: 'recovery' };

export interface RecoveryReport {
  /** Provisionings rolled forward (their credentials were kept for an idempotency key) or back. */
  provisioning: { slug: string; outcome: 'completed' | 'rolled back' | 'failed' }[];
  deprovisioned: string[];
  rotationsCompleted: string[];
  repaired: ClusterStateRepair[];
  expiredHandoffs: number;
}

/**
 * Completes what a stopped server left half-done, at start and every RECOVERY_INTERVAL_MS:
 * - a PROVISIONING tenant nobody is working on (its lock is free) is rolled forward when its
 *   new password was kept for an idempotency key (the caller can still fetch it), and rolled
 *   back to FAILED otherwise (nobody could ever receive its password; provisioning again
 *   starts afresh);
 * - a DEPROVISIONING tenant is finished;
 * - a recorded rotation whose verifier PostgreSQL never got is applied;
 * - PostgreSQL's limits and logins are compared with the records and repaired (cluster-state.ts);
 * - credentials kept past their window are deleted.
 */
export class TenantRecovery {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RecoveryReport> | undefined;
  private queued: Promise<RecoveryReport> | undefined;

  constructor(private readonly deps: Deps) {}

  start(intervalMs: number): void {
    const runLogged = () =>
      void this.run()
        .then((r) => {
          if (r.provisioning.length || r.deprovisioned.length || r.rotationsCompleted.length || r.repaired.length) this.deps.logger.info({ recovery: r }, 'recovered interrupted work');
        })
        .catch((err) => this.deps.logger.error({ err }, 'recovery pass failed'));
    runLogged();
    if (intervalMs > 0) {
      this.timer = setInterval(runLogged, intervalMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.idle();
  }

  /** Resolves once no pass is running. */
  async idle(): Promise<void> {
    while (this.running || this.queued) await (this.queued ?? this.running)!.catch(() => undefined);
  }

  /**
   * A pass that starts after this call, so it sees what is stuck now: when one is running, the
   * next pass is queued behind it (and shared by every caller meanwhile).
   */
  run(): Promise<RecoveryReport> {
    if (!this.running) return this.startPass();
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.startPass();
      });
    return this.queued;
  }

  private startPass(): Promise<RecoveryReport> {
    const pass: Promise<RecoveryReport> = this.pass().finally(() => {
      if (this.running === pass) this.running = undefined;
    });
    this.running = pass;
    return pass;
  }

  private async pass(): Promise<RecoveryReport> {
    const { deps } = this;
    const report: RecoveryReport = { provisioning: [], deprovisioned: [], rotationsCompleted: [], repaired: [], expiredHandoffs: 0 };
    const stuck = await deps.db.tenant.findMany({
      where: { OR: [{ status: { in: ['PROVISIONING', 'DEPROVISIONING'] } }, { status: 'FAILED', provisionStep: { not: null } }] },
    });
    for (const t of stuck) {
      const cluster = await deps.clusters.get(t.clusterId);
      await tryTenantLock(deps, cluster, t, async () => {
        const tenant = await deps.db.tenant.findUniqueOrThrow({ where: { id: t.id } });
        if (tenant.status === 'DEPROVISIONING') {
          await finishDeprovisioning(deps, OP, cluster, tenant);
          report.deprovisioned.push(tenant.slug);
        } else if (tenant.status === 'PROVISIONING' || (tenant.status === 'FAILED' && tenant.provisionStep)) {
          report.provisioning.push({ slug: tenant.slug, outcome: await this.settleProvisioning(tenant) });
        }
      }).catch((err) => deps.logger.error({ err, tenant: t.slug }, 'recovering a tenant failed'));
    }

    const rotations = await deps.db.credentialHandoff.findMany({ where: { purpose: 'ROTATE', appliedAt: null, verifier: { not: null } }, include: { tenant: true } });
    for (const h of rotations) {
      const cluster = await deps.clusters.get(h.tenant.clusterId);
      await tryTenantLock(deps, cluster, h.tenant, async () => {
        const still = await deps.db.credentialHandoff.findUnique({ where: { id: h.id } });
        if (!still?.verifier || still.appliedAt) return;
        await cluster.query(setRolePassword(h.tenant.roleName, still.verifier));
        await deps.db.$transaction(async (tx) => {
          await tx.credentialHandoff.update({ where: { id: h.id }, data: { appliedAt: new Date(), verifier: null } });
          await recordAuditEvent(tx, OP, { category: 'security', action: 'tenant.credentials.rotation.completed', tenant: h.tenant, subject: h.tenant.roleName });
        });
        report.rotationsCompleted.push(h.tenant.slug);
      }).catch((err) => deps.logger.error({ err, tenant: h.tenant.slug }, 'completing a rotation failed'));
    }

    for (const row of await deps.db.cluster.findMany({ select: { id: true } })) {
      const cluster = await deps.clusters.get(row.id);
      report.repaired.push(...(await reconcileClusterState(deps, cluster).catch((err) => {
        deps.logger.warn({ err, cluster: cluster.name }, 'comparing PostgreSQL with the records failed');
        return [];
      })));
    }
    report.expiredHandoffs = (await deps.db.credentialHandoff.deleteMany({ where: { expiresAt: { lt: new Date() } } })).count;
    return report;
  }

  /** An interrupted provisioning (the caller holds its lock). */
  private async settleProvisioning(tenant: Tenant): Promise<'completed' | 'rolled back' | 'failed'> {
    const { deps } = this;
    const cluster = await deps.clusters.get(tenant.clusterId);
    const kept = await deps.db.credentialHandoff.findFirst({ where: { tenantId: tenant.id, purpose: 'PROVISION', verifier: { not: null } } });
    if (kept?.verifier && tenant.provisionStep === 'SCHEMA_VERSION') {
      // Every step but the password was done, and the password is kept for the caller's key: finish.
      await cluster.query(setRolePassword(tenant.roleName, kept.verifier));
      const active = await deps.db.$transaction(async (tx) => {
        const t = await tx.tenant.update({ where: { id: tenant.id }, data: { status: 'ACTIVE', provisionStep: 'CREDENTIALS', failedStep: null, lastError: null } });
        await tx.credentialHandoff.update({ where: { id: kept.id }, data: { appliedAt: new Date(), verifier: null } });
        await recordAuditEvent(tx, OP, { category: 'tenant', action: 'tenant.provisioned', tenant: t, subject: t.databaseName, metadata: { recovered: true } });
        return t;
      });
      await afterCommit(deps, { tenantId: active.id, pool: true, inventory: true });
      return 'completed';
    }
    const rolledBack = await rollBackProvisioning(deps, cluster, tenant, OP);
    await deps.db.$transaction(async (tx) => {
      await tx.tenant.update({
        where: { id: tenant.id },
        data: {
          status: 'FAILED',
          failedStep: tenant.failedStep ?? 'INTERRUPTED',
          lastError: tenant.lastError ?? 'interrupted: the server stopped during provisioning; provisionTenant again to retry',
          ...(rolledBack ? { provisionStep: null } : {}),
        },
      });
      if (rolledBack) await tx.credentialHandoff.deleteMany({ where: { tenantId: tenant.id, purpose: 'PROVISION' } });
      await recordAuditEvent(tx, OP, { category: 'tenant', action: 'tenant.provision.interrupted', tenant, subject: tenant.databaseName, metadata: { step: tenant.provisionStep, rolledBack } });
    });
    return rolledBack ? 'rolled back' : 'failed';
  }
}
