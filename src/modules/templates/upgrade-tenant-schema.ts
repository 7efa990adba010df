import semver from 'semver';
import { LockLostError } from '../../platform/locks/advisory-locks.js';
import { applyMigrations, MigrationFailedError } from '../../platform/db/migrations.js';
import type { Tenant } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { SCHEMA_MIGRATION_LOCK } from '../../platform/locks/lock-names.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import { UserError } from '../../platform/errors.js';
import { installExtensions, readInstalledExtensions, type TenantExtensions } from '../extensions/index.js';
import { assertSettled, readSchemaVersion, type TenantAccess, type TenantChanges, type TenantSecurity, type Visible } from '../tenants/index.js';
import { failureCauseOf, type FailureCause } from './failure-cause.js';
import { TenantStepRunner } from './tenant-executor.js';
import { schemaVersionLedger, TENANT_COMPONENT } from './schema-version-ledger.js';
import type { SchemaVersionStore } from './schema-version-store.js';
import type { TemplateCatalog, TemplateVersion } from './template-catalog.js';

export interface UpgradeResult {
  tenant: Tenant;
  fromVersion: string;
  /** Where the tenant is now: the target, or the last step that succeeded. */
  toVersion: string;
  applied: string[];
  /** `cause`: whether the tenant's own objects or data made it fail, or the step itself (see failure-cause.ts). */
  failed: { version: string; message: string; cause: FailureCause } | null;
}

/** The newest version with the tenant's major (crossing a major is a deliberate choice: name it). */
export function defaultTarget(versions: readonly TemplateVersion[], current: string): TemplateVersion | undefined {
  const major = semver.major(current);
  return versions.filter((v) => semver.major(v.version) === major).at(-1);
}

/** Moving a tenant database's schema forward along its template's versions. */
export class SchemaUpgrades {
  constructor(
    private readonly p: {
      db: ControlClient;
      catalog: TemplateCatalog;
      access: TenantAccess;
      security: TenantSecurity;
      locks: TenantLocks;
      changes: TenantChanges;
      schemaVersions: SchemaVersionStore;
      tenantExtensions: TenantExtensions;
    },
  ) {}

  /**
   * Applies the template steps a tenant database is missing, in order, each in its own
   * transaction together with its __SchemaVersion update, with an audit event per step.
   * A failing step is rolled back alone: the tenant stays at the last good version, and
   * the result (not an exception) says which step failed and why.
   */
  async upgradeTenantSchema(
    op: OperationContext,
    input: { slug: string; targetVersion?: string | null },
    visible: Visible = () => true,
  ): Promise<UpgradeResult> {
    const { db, catalog, locks } = this.p;
    return this.p.access.withTenant(input.slug, visible, async (tenant, cluster) => {
      assertSettled(tenant, 'an upgrade');
      const template = catalog.get(tenant.templateName);
      if (!template) throw new UserError('TEMPLATE_NOT_FOUND', `tenant ${tenant.slug} uses template ${tenant.templateName}, which no longer exists`, 'slug');
      await this.p.security.ensureSecured(op, cluster, tenant);
      const result = await cluster.withDatabase(tenant.databaseName, async (client) => {
        const current = (await readSchemaVersion(client))?.version;
        if (!current) throw new UserError('INVALID_INPUT', `${tenant.databaseName} has no ${TENANT_COMPONENT} version to upgrade from`, 'slug');
        const target = input.targetVersion ? template.versions.find((v) => v.version === input.targetVersion) : defaultTarget(template.versions, current);
        if (!target) throw new UserError('TEMPLATE_NOT_FOUND', `template ${template.name} has no version ${input.targetVersion}`, 'targetVersion');
        if (semver.lt(target.version, current)) {
          throw new UserError('INVALID_INPUT', `${tenant.slug} is at ${current}; schemas are not downgraded to ${target.version}`, 'targetVersion');
        }

        const applied: string[] = [];
        let failed: UpgradeResult['failed'] = null;
        const steps = catalog.stepsBetween(current, target);
        if (steps.length > 0) {
          // Extensions first, as the control plane, into the schema only it can create in.
          await installExtensions(client, target.extensions);
          // Then the steps, as the tenant (see tenant-executor.ts): tables they create are the tenant's.
          const runner = await TenantStepRunner.create(client, tenant.roleName);
          try {
            await applyMigrations(client, steps.map((s) => s.migration), schemaVersionLedger({ component: TENANT_COMPONENT, appliedBy: op.actor, database: 'tenant' }), {
              lockKey: SCHEMA_MIGRATION_LOCK,
              execute: async (_, m) => {
                await locks.nextStep(`upgrade.step:${m.name}`, tenant.slug);
                await runner.run(m.sql);
              },
              onApplied: async (m) => {
                applied.push(m.name);
                await recordAuditEvent(db, op, { category: 'schema', action: 'tenant.schema.upgraded', tenant, subject: m.name, metadata: { version: m.name, description: m.description ?? null } });
              },
            });
          } catch (err) {
            if (!(err instanceof MigrationFailedError)) throw err;
            // Not the step's failure: the lock went before it began (rolled back unrun).
            if (err.cause instanceof LockLostError) throw err.cause;
            failed = { version: err.migration, message: (err.cause as Error).message, cause: failureCauseOf(err.cause) };
            await recordAuditEvent(db, op, { category: 'schema', action: 'tenant.schema.upgrade.failed', tenant, subject: err.migration, metadata: failed });
          }
        }
        const now = (await readSchemaVersion(client))!;
        return { current, now, applied, failed, installed: await readInstalledExtensions(client) };
      });
      await this.p.schemaVersions.mirrorSchemaVersion(tenant.id, result.now);
      await this.p.tenantExtensions.recordExtensions(tenant.id, result.installed);
      const upgraded = await db.tenant.findUniqueOrThrow({ where: { id: tenant.id } });
      await this.p.changes.committed(tenant.id, { inventory: true });
      return { tenant: upgraded, fromVersion: result.current, toVersion: result.now.version, applied: result.applied, failed: result.failed };
    });
  }
}
