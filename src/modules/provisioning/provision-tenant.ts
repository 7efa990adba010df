import { randomUUID } from 'node:crypto';
import type { Prisma } from '../../generated/prisma/client.js';
import type { Config } from '../../platform/config.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import { UserError } from '../../platform/errors.js';
import type { Failpoints } from '../../platform/failpoints.js';
import { theOnlyRow } from '../../platform/db/rows-in-order.js';
import { LockLostError } from '../../platform/locks/advisory-locks.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import type { Logger } from '../../platform/logger.js';
import { auditEventInsert, recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { ClusterRegistry } from '../clusters/index.js';
import {
  databaseExists,
  dropTenantObjects,
  newCredentials,
  roleExists,
  tenantObjectName,
  validateIdempotencyKey,
  validateSlug,
  validateText,
  type ConnectionStrings,
  type Tenant,
  type TenantChanges,
} from '../tenants/index.js';
import type { CapacityPlanner, ClusterPlacement, PlacementRecord, PlacementRequest } from '../quotas/index.js';
import { DEFAULT_TEMPLATE, type TemplateCatalog, type TemplateVersion } from '../templates/index.js';
import { activateTenant, startNewTenant } from './provisioning.sql.js';
import { PROVISION_STEPS, runStep, TenantDatabaseSession, type ProvisionStep, type StepContext, type StepServices } from './provisioning-steps.js';

interface ProvisionTenantInput {
  slug: string;
  displayName: string;
  maxConnections?: number | null;
  template?: string | null;
  templateVersion?: string | null;
  /** With one, the credentials can be obtained again by repeating the call (see credential-handoff.ts). */
  idempotencyKey?: string | null;
  /** Where to place a new tenant: a cluster by id, or a region and/or labels; absent: PLACEMENT_POLICY among every ACTIVE cluster. */
  placement?: PlacementRequest | null;
}

interface ProvisionTenantResult {
  tenant: Tenant;
  /** Only when this call set the credentials (or the idempotency key finds them); null otherwise. */
  connectionString: string | null;
  /** The same credentials through the pooler; null without one. */
  pooledConnectionString: string | null;
}

interface TenantProvisioningOptions extends StepServices {
  config: Pick<Config, 'DEFAULT_MAX_CONNECTIONS' | 'QUOTA_MIN' | 'QUOTA_MAX' | 'TENANT_DB_PREFIX' | 'CONNECTION_RESERVE' | 'DATABASE_COPY_STRATEGY'>;
  logger: Logger;
  clusters: ClusterRegistry;
  catalog: TemplateCatalog;
  locks: TenantLocks;
  /** provision.before:<STEP> (with the lock check, TenantLocks.nextStep) and provision.after:<STEP>. */
  failpoints: Failpoints;
  changes: TenantChanges;
  capacity: CapacityPlanner;
  /** Which cluster a new tenant goes to (a resumed or existing one keeps its own). */
  placement: ClusterPlacement;
  connectionStrings: ConnectionStrings;
}

/** Provisioning tenants: creating them, completing an interrupted attempt, and undoing a failed one. */
export class TenantProvisioning {
  constructor(private readonly p: TenantProvisioningOptions) {}

  /**
   * Creates a tenant's role and database from its template, idempotently: the same
   * request twice returns the existing tenant (with the same credentials when it carries
   * the same idempotency key); two servers provisioning one name take turns on an advisory
   * lock; a failed attempt is rolled back on the cluster and leaves the row FAILED with the
   * step it reached, and calling again completes it. Every state change of the row commits
   * together with its audit event.
   */
  async provisionTenant(op: OperationContext, input: ProvisionTenantInput): Promise<ProvisionTenantResult> {
    const { config, db } = this.p;
    const slug = input.slug;
    validateSlug(slug);
    const displayName = validateText(input.displayName, 'displayName', 200);
    const idempotencyKey = validateIdempotencyKey(input.idempotencyKey);
    const maxConnections = input.maxConnections ?? config.DEFAULT_MAX_CONNECTIONS;
    if (!Number.isInteger(maxConnections) || maxConnections < config.QUOTA_MIN || maxConnections > config.QUOTA_MAX) {
      throw new UserError('QUOTA_OUT_OF_RANGE', `maxConnections must be between ${config.QUOTA_MIN} and ${config.QUOTA_MAX}`, 'maxConnections');
    }
    const templateName = input.template ?? DEFAULT_TEMPLATE;
    const template = this.p.catalog.resolve(templateName, input.templateVersion);
    if (!template) {
      const known = this.p.catalog.get(templateName);
      throw new UserError(
        'TEMPLATE_NOT_FOUND',
        known ? `template ${templateName} has no version ${input.templateVersion}` : `no template named ${templateName}`,
        known ? 'templateVersion' : 'template',
      );
    }

    const objectName = tenantObjectName(config.TENANT_DB_PREFIX, slug);

    // The tenant's lock is keyed by its name alone: taken before its cluster is known.
    const done = await this.p.locks.underTenantLock({ slug, databaseName: objectName }, async (): Promise<ProvisionTenantResult & { settled?: Promise<void> }> => {
      let tenant = await db.tenant.findUnique({ where: { slug } });
      let cluster: ClusterAdmin;
      // A tenant started by this call has the quota it asked for; a resumed one keeps its recorded quota.
      let started = false;
      if (tenant && (tenant.status === 'ACTIVE' || tenant.status === 'SUSPENDED')) {
        cluster = await this.p.clusters.get(tenant.clusterId);
        await this.assertSameRequest(tenant, { ...input, displayName });
        // A caller whose first response was lost gets the same credentials back with the same key.
        const kept = idempotencyKey ? await this.p.handoffs.findHandoff(tenant.id, idempotencyKey) : null;
        const strings = kept?.purpose === 'PROVISION' ? this.p.connectionStrings.tenantConnectionStrings(cluster, tenant, kept.password) : null;
        return { tenant, connectionString: strings?.direct ?? null, pooledConnectionString: strings?.pooled ?? null };
      }
      if (tenant?.status === 'DEPROVISIONING') {
        throw new UserError('TENANT_BUSY', `tenant ${slug} is being deprovisioned; try again when it is DEPROVISIONED`, 'slug');
      }
      if (!tenant || tenant.status === 'DEPROVISIONED') {
        // A new tenant (or one deprovisioned, which has nothing left anywhere) is placed anew.
        const chosen = await this.p.placement.choose({ placement: input.placement, quota: maxConnections, slug });
        cluster = chosen;
        await this.assertNameFree(chosen, objectName, tenant?.id);
        const existing = tenant;
        const placement = this.p.placement.record(input.placement, chosen.id);
        tenant = await this.p.locks.underCapacityLock(chosen, async () => {
          // Checked again under the lock: status, maxTenants and capacity as they are now.
          await this.p.placement.assertCanTake(chosen, { tenantId: existing?.id ?? null, slug, quota: maxConnections, defaulted: input.maxConnections == null });
          return this.startRecord(op, { tenant: existing, slug, displayName, objectName, clusterId: chosen.id, template, maxConnections, placement });
        });
        started = true;
      } else {
        cluster = await this.p.clusters.get(tenant.clusterId);
        // PROVISIONING (its server stopped mid-way) or FAILED: resume where it stopped.
        const resumed = tenant;
        tenant = await db.$transaction(async (tx) => {
          await recordAuditEvent(tx, op, { category: 'tenant', action: 'tenant.provision.resumed', tenant: resumed, metadata: { fromStep: resumed.provisionStep, failedStep: resumed.failedStep } });
          return tx.tenant.update({ where: { id: resumed.id }, data: { status: 'PROVISIONING', failedStep: null, lastError: null } });
        });
      }
      // The pool follows the row now (PROVISIONING has one), while the steps make the database.
      const poolSettled = this.p.changes.committed(tenant.id, { pool: true });
      const resumedTemplate = this.p.catalog.resolve(tenant.templateName, tenant.templateVersion) ?? template;
      const quota = started ? maxConnections : (await db.quota.findUniqueOrThrow({ where: { tenantId: tenant.id } })).maxConnections;
      const ctx: StepContext = {
        services: this.p,
        cluster,
        tenant,
        maxConnections: quota,
        template: resumedTemplate,
        actor: op.actor,
        idempotencyKey,
        inDatabase: new TenantDatabaseSession(cluster, tenant.databaseName),
        freshCredentials: newCredentials(),
      };
      ctx.freshCredentials.catch(() => undefined);
      const { tenant: active, settled } = await this.runProvisioningSteps(op, tenant, ctx, poolSettled);
      const strings = this.p.connectionStrings.tenantConnectionStrings(cluster, active, ctx.password!);
      return { tenant: active, connectionString: strings.direct, pooledConnectionString: strings.pooled, settled };
    });
    // The pooler takes the new pool after the tenant's lock is let go; a usable pooled
    // connection string is worth waiting for (a bounded time).
    const { settled, ...result } = done;
    await settled;
    return result;
  }

  /**
   * Runs the steps after the last completed one (the caller holds the tenant's lock). On
   * failure everything created on the cluster is dropped and the row turns FAILED with its
   * step (UserError).
   */
  private async runProvisioningSteps(op: OperationContext, tenant: Tenant, ctx: StepContext, poolSettled: Promise<void>): Promise<{ tenant: Tenant; settled: Promise<void> }> {
    const { db, locks, failpoints } = this.p;
    const done = tenant.provisionStep ? PROVISION_STEPS.indexOf(tenant.provisionStep as ProvisionStep) : -1;
    let step: ProvisionStep | undefined;
    // A step's completion is written while the next step runs, and is durable before that step
    // counts as done: recovery, reading an older step, only redoes idempotent work or rolls back.
    let recording: Promise<unknown> = Promise.resolve();
    try {
      for (step of PROVISION_STEPS.slice(done + 1)) {
        // A lock lost with its session stops here; recovery finishes or rolls back what is done.
        await locks.nextStep(`provision.before:${step}`, tenant.slug);
        ctx.record = undefined;
        ctx.recordIn = undefined;
        await runStep[step](ctx);
        await recording;
        // Done on the cluster, not yet recorded: the worst moment to stop (the crash tests stop here).
        await failpoints.hit(`provision.after:${step}`, { tenantSlug: tenant.slug });
        if (step !== 'CREDENTIALS') {
          recording = this.recordStep(tenant.id, step, ctx);
          // Awaited after the next step; a failure meanwhile must not count as unhandled.
          recording.catch(() => undefined);
        }
      }
      await recording;
    } catch (err) {
      // Ended first: DROP DATABASE would otherwise have to end it, and no write may land after the rollback's.
      await Promise.all([ctx.inDatabase.close(), recording.catch(() => undefined)]);
      // Without the lock, rolling back could undo what the lock's new holder is doing: left to recovery.
      if (err instanceof LockLostError) throw err;
      this.p.logger.error({ err, correlationId: op.correlationId, tenant: tenant.slug, step }, 'provisioning failed');
      const lastError = (err as Error).message.slice(0, 500);
      await this.rollBack(op, ctx.cluster, ctx.tenant, { failedStep: step!, lastError, action: 'tenant.provision.failed', metadata: { step: step!, error: lastError } });
      throw new UserError(
        err instanceof UserError ? err.code : 'PROVISIONING_FAILED',
        `provisioning ${tenant.slug} failed at step ${step}${err instanceof UserError ? `: ${err.message}` : ''}; nothing was left on the cluster and provisioning it again retries (correlation id ${op.correlationId})`,
        err instanceof UserError ? err.field : undefined,
      );
    }
    const closed = ctx.inDatabase.close();
    // The row turns ACTIVE with its audit event, and the kept credentials count as applied.
    const audited = (from: Prisma.Sql) =>
      auditEventInsert(
        op,
        {
          category: 'tenant',
          action: 'tenant.provisioned',
          tenant,
          subject: tenant.databaseName,
          metadata: { databaseName: tenant.databaseName, roleName: tenant.roleName, maxConnections: ctx.maxConnections, template: tenant.templateName, templateVersion: tenant.templateVersion },
        },
        from,
      );
    const active = theOnlyRow(await db.$queryRaw<Tenant[]>(activateTenant(tenant.id, audited)), `activating ${tenant.slug}`);
    await closed;
    // Past the point of no return: the inventory follows in the background; the pool, asked for
    // when the row turned PROVISIONING, is what the caller waits for (a bounded time).
    return { tenant: active, settled: Promise.all([poolSettled, this.p.changes.committed(active.id, { inventory: true })]).then(() => undefined) };
  }

  /** Records a step as completed, with what it asked to be recorded in the same transaction. */
  private async recordStep(tenantId: string, step: ProvisionStep, ctx: StepContext): Promise<void> {
    const data = { provisionStep: step, ...(ctx.record ?? {}) };
    const recordIn = ctx.recordIn;
    if (!recordIn) {
      await this.p.db.tenant.update({ where: { id: tenantId }, data });
      return;
    }
    await this.p.db.$transaction(async (tx) => {
      await tx.tenant.update({ where: { id: tenantId }, data });
      await recordIn(tx);
    });
  }

  /** A new tenant may not take a name that another tenant or a foreign object already has. */
  private async assertNameFree(cluster: ClusterAdmin, objectName: string, reprovisioningId: string | undefined): Promise<void> {
    const holder = await this.p.db.tenant.findFirst({
      where: { clusterId: cluster.id, databaseName: objectName, status: { not: 'DEPROVISIONED' }, ...(reprovisioningId ? { id: { not: reprovisioningId } } : {}) },
    });
    if (holder) {
      throw new UserError('NAME_COLLISION', `tenant ${holder.slug} already uses the database and role name ${objectName}`, 'slug');
    }
    const [db, role] = await Promise.all([cluster.query(databaseExists, [objectName]), cluster.query(roleExists, [objectName])]);
    if (db.rowCount || role.rowCount) {
      throw new UserError('NAME_COLLISION', `a ${db.rowCount ? 'database' : 'role'} named ${objectName} already exists on the cluster and is not managed by Tenantry`, 'slug');
    }
  }

  private async startRecord(
    op: OperationContext,
    p: { tenant: Tenant | null; slug: string; displayName: string; objectName: string; clusterId: string; template: TemplateVersion; maxConnections: number; placement: PlacementRecord },
  ): Promise<Tenant> {
    const started: Prisma.InputJsonObject = {
      template: p.template.template,
      templateVersion: p.template.version,
      maxConnections: p.maxConnections,
      clusterId: p.clusterId,
      placement: p.placement as unknown as Prisma.InputJsonObject,
    };
    if (!p.tenant) {
      const id = randomUUID();
      const audited = (from: Prisma.Sql) => auditEventInsert(op, { category: 'tenant', action: 'tenant.provision.started', tenant: { id, slug: p.slug }, subject: p.objectName, metadata: started }, from);
      const row = { id, slug: p.slug, displayName: p.displayName, objectName: p.objectName, clusterId: p.clusterId, placement: p.placement, templateName: p.template.template, templateVersion: p.template.version, maxConnections: p.maxConnections, actor: op.actor };
      return theOnlyRow(await this.p.db.$queryRaw<Tenant[]>(startNewTenant(row, audited)), `starting ${p.slug}`);
    }
    // Provisioned again after it was deprovisioned (rare): its row and quota are there already.
    const again = p.tenant;
    const fields = {
      displayName: p.displayName,
      status: 'PROVISIONING' as const,
      databaseName: p.objectName,
      roleName: p.objectName,
      clusterId: p.clusterId,
      placement: p.placement as unknown as Prisma.InputJsonObject,
      templateName: p.template.template,
      templateVersion: p.template.version,
      provisionStep: null,
      failedStep: null,
      lastError: null,
      deprovisionedAt: null,
      securedAt: null,
    };
    return this.p.db.$transaction(async (tx) => {
      const tenant = await tx.tenant.update({ where: { id: again.id }, data: fields });
      const previous = await tx.quota.findUnique({ where: { tenantId: tenant.id } });
      await tx.quota.upsert({
        where: { tenantId: tenant.id },
        create: { tenantId: tenant.id, maxConnections: p.maxConnections, updatedBy: op.actor },
        update: { maxConnections: p.maxConnections, updatedBy: op.actor, updatedAt: new Date() },
      });
      if (previous?.maxConnections !== p.maxConnections) {
        await tx.quotaChange.create({
          data: { tenantId: tenant.id, actor: op.actor, oldMaxConnections: previous?.maxConnections ?? null, newMaxConnections: p.maxConnections, reason: 'provisioned' },
        });
      }
      await recordAuditEvent(tx, op, {
        category: 'tenant',
        action: 'tenant.provision.started',
        tenant,
        subject: p.objectName,
        metadata: started,
      });
      return tenant;
    });
  }

  /** Idempotency: the same slug with the same request returns the tenant; a different request is a conflict. */
  private async assertSameRequest(tenant: Tenant, request: ProvisionTenantInput): Promise<void> {
    const quota = await this.p.db.quota.findUnique({ where: { tenantId: tenant.id } });
    const differs =
      request.displayName !== tenant.displayName ||
      (request.maxConnections != null && request.maxConnections !== quota?.maxConnections) ||
      (request.template != null && request.template !== tenant.templateName) ||
      (request.templateVersion != null && request.templateVersion !== tenant.templateVersion) ||
      (request.placement?.clusterId != null && request.placement.clusterId !== tenant.clusterId);
    if (differs) {
      throw new UserError('SLUG_TAKEN', `tenant ${tenant.slug} already exists with different settings`, 'slug');
    }
  }

  /**
   * Drops what a provisioning attempt created and records the row FAILED with its audit event
   * (also crash recovery's). False (logged) when dropping failed too: then the row keeps its step
   * and a retry resumes after the last good one; rolled back, a retry starts from the first step.
   */
  async rollBack(
    op: OperationContext,
    cluster: ClusterAdmin,
    tenant: StepContext['tenant'],
    failure: { failedStep: string; lastError: string; action: string; metadata: Record<string, string | null> },
  ): Promise<boolean> {
    let rolledBack = true;
    await dropTenantObjects(cluster, tenant).catch((err: unknown) => {
      this.p.logger.error({ err, correlationId: op.correlationId, tenant: tenant.slug }, 'rolling back a failed provisioning failed');
      rolledBack = false;
    });
    await this.p.db.$transaction(async (tx) => {
      await tx.tenant.update({
        where: { id: tenant.id },
        data: { status: 'FAILED', failedStep: failure.failedStep, lastError: failure.lastError, ...(rolledBack ? { provisionStep: null } : {}) },
      });
      if (rolledBack) await tx.credentialHandoff.deleteMany({ where: { tenantId: tenant.id, purpose: 'PROVISION' } });
      await recordAuditEvent(tx, op, { category: 'tenant', action: failure.action, tenant, subject: tenant.databaseName, metadata: { ...failure.metadata, rolledBack } });
    });
    // A FAILED tenant has no pool: the one added when it turned PROVISIONING goes.
    await this.p.changes.committed(tenant.id, { pool: true });
    return rolledBack;
  }
}
