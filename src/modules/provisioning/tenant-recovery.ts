import type { ControlClient } from '../../platform/db/control-client.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import type { Logger } from '../../platform/logger.js';
import { PeriodicTask } from '../../platform/periodic-task.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { ClusterRegistry } from '../clusters/index.js';
import { setRolePassword, type Tenant, type TenantChanges, type TenantDeprovisioning } from '../tenants/index.js';
import type { ClusterStateRepair, LimitDrift } from '../quotas/index.js';
import type { TenantProvisioning } from './provision-tenant.js';

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
  private readonly task: PeriodicTask;
  private intervalMs = 0;
  /** The newest pass the task started: run() takes one begun after its call. */
  private latest: Promise<RecoveryReport> | undefined;

  constructor(
    private readonly p: {
      db: ControlClient;
      logger: Logger;
      clusters: ClusterRegistry;
      locks: TenantLocks;
      provisioning: TenantProvisioning;
      deprovisioning: TenantDeprovisioning;
      limitDrift: LimitDrift;
      changes: TenantChanges;
    },
  ) {
    this.task = new PeriodicTask({ name: 'recovery pass', intervalMs: () => this.intervalMs, run: () => this.taskPass(), logger: p.logger });
  }

  /** A pass now, then one every `intervalMs` (0: only the one now); failures are logged. */
  start(intervalMs: number): void {
    this.intervalMs = intervalMs;
    this.task.start();
  }

  /** No more passes; waits for the one under way. */
  async stop(): Promise<void> {
    await this.task.stop();
  }

  async idle(): Promise<void> {
    await this.task.idle();
  }

  /**
   * A pass that starts after this call, so it sees what is stuck now: when one is running, the
   * next pass is queued behind it (and shared by every caller meanwhile). Rejects when that pass fails.
   */
  async run(): Promise<RecoveryReport> {
    const before = this.latest;
    await this.task.runNow();
    // Stopped before the task started one for this call: a pass of its own.
    return this.latest !== before ? this.latest! : this.pass();
  }

  private async taskPass(): Promise<void> {
    const report = await (this.latest = this.pass());
    if (report.provisioning.length || report.deprovisioned.length || report.rotationsCompleted.length || report.repaired.length) {
      this.p.logger.info({ recovery: report }, 'recovered interrupted work');
    }
  }

  private async pass(): Promise<RecoveryReport> {
    const { db, clusters, locks, logger } = this.p;
    const report: RecoveryReport = { provisioning: [], deprovisioned: [], rotationsCompleted: [], repaired: [], expiredHandoffs: 0 };
    const stuck = await db.tenant.findMany({
      where: { OR: [{ status: { in: ['PROVISIONING', 'DEPROVISIONING'] } }, { status: 'FAILED', provisionStep: { not: null } }] },
    });
    for (const t of stuck) {
      const cluster = await clusters.get(t.clusterId);
      await locks.tryTenantLock(t, async () => {
        const tenant = await db.tenant.findUniqueOrThrow({ where: { id: t.id } });
        if (tenant.status === 'DEPROVISIONING') {
          await this.p.deprovisioning.finishDeprovisioning(OP, cluster, tenant);
          report.deprovisioned.push(tenant.slug);
        } else if (tenant.status === 'PROVISIONING' || (tenant.status === 'FAILED' && tenant.provisionStep)) {
          report.provisioning.push({ slug: tenant.slug, outcome: await this.settleProvisioning(tenant) });
        }
      }).catch((err) => logger.error({ err, tenant: t.slug }, 'recovering a tenant failed'));
    }

    const rotations = await db.credentialHandoff.findMany({ where: { purpose: 'ROTATE', appliedAt: null, verifier: { not: null } }, include: { tenant: true } });
    for (const h of rotations) {
      const cluster = await clusters.get(h.tenant.clusterId);
      await locks.tryTenantLock(h.tenant, async () => {
        const still = await db.credentialHandoff.findUnique({ where: { id: h.id } });
        if (!still?.verifier || still.appliedAt) return;
        await cluster.query(setRolePassword(h.tenant.roleName, still.verifier));
        await db.$transaction(async (tx) => {
          await tx.credentialHandoff.update({ where: { id: h.id }, data: { appliedAt: new Date(), verifier: null } });
          await recordAuditEvent(tx, OP, { category: 'security', action: 'tenant.credentials.rotation.completed', tenant: h.tenant, subject: h.tenant.roleName });
        });
        report.rotationsCompleted.push(h.tenant.slug);
      }).catch((err) => logger.error({ err, tenant: h.tenant.slug }, 'completing a rotation failed'));
    }

    // Every cluster on its own: one that cannot be reached (or whose URL cannot be had) stops only its own comparison.
    for (const row of await db.cluster.findMany({ select: { id: true, name: true } })) {
      const repaired = await clusters
        .get(row.id)
        .then((cluster) => this.p.limitDrift.reconcileClusterState(cluster))
        .catch((err) => {
          logger.warn({ err, cluster: row.name }, 'comparing PostgreSQL with the records failed');
          return [];
        });
      report.repaired.push(...repaired);
    }
    report.expiredHandoffs = (await db.credentialHandoff.deleteMany({ where: { expiresAt: { lt: new Date() } } })).count;
    return report;
  }

  /** An interrupted provisioning (the caller holds its lock). */
  private async settleProvisioning(tenant: Tenant): Promise<'completed' | 'rolled back' | 'failed'> {
    const { db } = this.p;
    const cluster = await this.p.clusters.get(tenant.clusterId);
    const kept = await db.credentialHandoff.findFirst({ where: { tenantId: tenant.id, purpose: 'PROVISION', verifier: { not: null } } });
    if (kept?.verifier && tenant.provisionStep === 'SCHEMA_VERSION') {
      // Every step but the password was done, and the password is kept for the caller's key: finish.
      await cluster.query(setRolePassword(tenant.roleName, kept.verifier));
      const active = await db.$transaction(async (tx) => {
        const t = await tx.tenant.update({ where: { id: tenant.id }, data: { status: 'ACTIVE', provisionStep: 'CREDENTIALS', failedStep: null, lastError: null } });
        await tx.credentialHandoff.update({ where: { id: kept.id }, data: { appliedAt: new Date(), verifier: null } });
        await recordAuditEvent(tx, OP, { category: 'tenant', action: 'tenant.provisioned', tenant: t, subject: t.databaseName, metadata: { recovered: true } });
        return t;
      });
      await this.p.changes.committed(active.id, { pool: true, inventory: true });
      return 'completed';
    }
    const rolledBack = await this.p.provisioning.rollBack(OP, cluster, tenant, {
      failedStep: tenant.failedStep ?? 'INTERRUPTED',
      lastError: tenant.lastError ?? 'interrupted: the server stopped during provisioning; provisionTenant again to retry',
      action: 'tenant.provision.interrupted',
      metadata: { step: tenant.provisionStep },
    });
    return rolledBack ? 'rolled back' : 'failed';
  }
}
