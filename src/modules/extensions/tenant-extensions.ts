import type pg from 'pg';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { Prisma, Tenant, TenantExtension } from '../../generated/prisma/client.js';
import type { Failpoints } from '../../platform/failpoints.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import type { Logger } from '../../platform/logger.js';
import { rowsGrouped, rowsInOrder } from '../../platform/db/rows-in-order.js';
import { availableExtensionVersions, extensionsNotOurs, updateExtension } from './extensions.sql.js';
import { installExtension } from './install-extensions.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { ClusterRegistry } from '../clusters/index.js';
import {
  assertSettled,
  EXTENSION_SCHEMA,
  installedExtensions,
  tryMoveToExtensionSchema,
  type TenantAccess,
  type TenantChanges,
  type TenantSecurity,
  type Visible,
} from '../tenants/index.js';
import { UserError } from '../../platform/errors.js';
import { policyNames, type ExtensionPolicies, type ExtensionPolicy } from './extension-policy.js';
import { extensionReport, offeredVersions, type ExtensionReport } from './extension-status.js';

export type { TenantExtension };

/** What is installed in a database, by name (plpgsql, part of every database, left out). */
export async function readInstalledExtensions(client: pg.ClientBase): Promise<Map<string, string>> {
  const { rows } = await client.query<{ name: string; version: string }>(installedExtensions);
  return new Map(rows.filter((r) => r.name !== 'plpgsql').map((r) => [r.name, r.version]));
}

/** Reads installed and offered versions inside a tenant database and judges them. */
async function readExtensionReport(client: pg.ClientBase, policy: ExtensionPolicy): Promise<{ report: ExtensionReport[]; installed: Map<string, string> }> {
  const [installed, offered] = await Promise.all([
    readInstalledExtensions(client),
    client.query<{ name: string; version: string }>(availableExtensionVersions, [policyNames(policy)]),
  ]);
  return { report: extensionReport(policy, installed, offeredVersions(offered.rows)), installed };
}

/** Records what is installed, so lists show extension state without opening the database (in the caller's transaction, if any). */
export async function recordExtensions(db: ControlClient | Prisma.TransactionClient, tenantId: string, installed: ReadonlyMap<string, string>): Promise<void> {
  const write = async (tx: Prisma.TransactionClient) => {
    await tx.tenantExtension.deleteMany({ where: { tenantId, name: { notIn: [...installed.keys()] } } });
    for (const [name, version] of installed) {
      await tx.tenantExtension.upsert({ where: { tenantId_name: { tenantId, name } }, create: { tenantId, name, version }, update: { version, recordedAt: new Date() } });
    }
  };
  if ('$transaction' in db) await db.$transaction(write);
  else await write(db);
}

export interface ExtensionUpdate {
  tenant: Tenant;
  before: ExtensionReport[];
  after: ExtensionReport[];
  /** What was done: "installed pg_trgm 1.6", "moved pg_trgm from public to extensions", "updated pg_trgm 1.3 → 1.6". */
  changes: string[];
  /** What could not be done, and why (EXTENSION_UNSAFE_SCHEMA): returned as userErrors beside the changes. */
  problems: UserError[];
}

interface Change {
  text: string;
  name: string;
  action: 'tenant.extension.updated' | 'tenant.extension.moved';
  metadata: Record<string, string | null>;
}

/** A tenant's extensions: its template's policy, what Tenantry recorded, and bringing them up to it. */
export class TenantExtensions {
  constructor(
    private readonly p: {
      db: ControlClient;
      /** The template catalog (TemplateCatalog), by the one method used (see extension-policy.ts). */
      catalog: ExtensionPolicies;
      clusters: ClusterRegistry;
      access: TenantAccess;
      security: TenantSecurity;
      locks: TenantLocks;
      changes: TenantChanges;
      failpoints: Failpoints;
      logger: Logger;
    },
  ) {}

  policyOf(tenant: Pick<Tenant, 'templateName' | 'templateVersion'>): ExtensionPolicy {
    return this.p.catalog.resolve(tenant.templateName, tenant.templateVersion)?.extensions ?? { required: [], optional: [] };
  }

  /** Extensions Tenantry recorded per tenant (one query for a page), in the order of `tenantIds`. */
  async recordedByTenantIds(tenantIds: readonly string[]): Promise<TenantExtension[][]> {
    return rowsGrouped(tenantIds, await this.p.db.tenantExtension.findMany({ where: { tenantId: { in: [...tenantIds] } } }), (r) => r.tenantId);
  }

  /** When the inventory last read each tenant database (null: never), one query for a page. */
  async checkedAtByTenantIds(tenantIds: readonly string[]): Promise<(Date | null)[]> {
    const rows = await this.p.db.tenantInventory.findMany({ where: { tenantId: { in: [...tenantIds] } }, select: { tenantId: true, checkedAt: true } });
    return rowsInOrder(tenantIds, rows, (r) => r.tenantId).map((r) => r?.checkedAt ?? null);
  }

  recordExtensions(tenantId: string, installed: ReadonlyMap<string, string>): Promise<void> {
    return recordExtensions(this.p.db, tenantId, installed);
  }

  /**
   * The report read from the tenant database now (a live read: the caller holds its slot of
   * the live-read budget). The `live-read` failpoint is inside, with the connection open.
   */
  async liveReport(tenant: Pick<Tenant, 'clusterId' | 'databaseName' | 'templateName' | 'templateVersion'>): Promise<ExtensionReport[]> {
    const policy = this.policyOf(tenant);
    const cluster = await this.p.clusters.get(tenant.clusterId);
    return cluster.withDatabase(tenant.databaseName, async (client) => {
      await this.p.failpoints.hit('live-read', { detail: 'extensions', clusterId: tenant.clusterId, database: tenant.databaseName });
      return (await readExtensionReport(client, policy)).report;
    });
  }

  /**
   * Installs missing extensions and updates outdated ones to the newest version the server
   * offers, as the control plane, in the tenant database's extensions schema (a legacy tenant
   * is secured first). What changed is recorded with one audit event per change, in one
   * control-database transaction.
   *
   * An update script runs with its extension's schema as search_path, so an extension that
   * lives where the tenant can create objects (installed in `public` by hand) is never updated
   * there: a relocatable one is moved to the extensions schema first (which takes a superuser
   * control plane: its objects belong to the bootstrap superuser); otherwise it stays as it is
   * and a problem (EXTENSION_UNSAFE_SCHEMA) names it and says why.
   */
  async updateTenantExtensions(op: OperationContext, input: { slug: string }, visible: Visible = () => true): Promise<ExtensionUpdate> {
    return this.p.access.withTenant(input.slug, visible, async (tenant, cluster) => {
      assertSettled(tenant, 'an extension update');
      await this.p.security.ensureSecured(op, cluster, tenant);
      const policy = this.policyOf(tenant);
      const done = await cluster.withDatabase(tenant.databaseName, async (client) => {
        const { report: before } = await readExtensionReport(client, policy);
        const changes: Change[] = [];
        const problems: UserError[] = [];
        const where = new Map((await client.query<{ name: string; schema: string; relocatable: boolean }>(installedExtensions)).rows.map((r) => [r.name, r]));
        const notOurs = new Map((await client.query<{ name: string; owner: string }>(extensionsNotOurs)).rows.map((r) => [r.name, r.owner]));
        for (const e of before) {
          if (e.status !== 'MISSING' && e.status !== 'OUTDATED') continue;
          // MISSING and OUTDATED both mean the newest offered version meets the minimum.
          const target = e.availableVersion;
          if (!target) continue;
          await this.p.locks.nextStep(`extensions.${e.name}`, tenant.slug);
          if (e.status === 'MISSING') {
            await installExtension(client, e.name, target);
            changes.push({ text: `installed ${e.name} ${target}`, name: e.name, action: 'tenant.extension.updated', metadata: { from: null, to: target } });
            continue;
          }
          const installed = where.get(e.name);
          const safe = installed?.schema === EXTENSION_SCHEMA || installed?.schema === 'pg_catalog';
          const owner = notOurs.get(e.name);
          if (safe && owner !== undefined) {
            // Installed while Tenantry ran as a superuser (docs: switching an existing install to a
            // least-privilege role): PostgreSQL cannot hand an extension over, and only its owner may update it.
            problems.push(
              new UserError(
                'EXTENSION_NOT_OWNED',
                `extension ${e.name} stays at ${e.installedVersion}: it belongs to "${owner}", and only its owner or a superuser can update it; as a superuser, in database "${tenant.databaseName}", run ${updateExtension(e.name, target)}`,
              ),
            );
            this.p.logger.warn({ tenant: tenant.slug, extension: e.name, owner }, 'extension not updated: the control plane does not own it');
            continue;
          }
          // The move and the update commit together: never moved and left outdated, never half-updated.
          await client.query('BEGIN');
          try {
            if (!safe) {
              const refused =
                owner !== undefined
                  ? `it belongs to "${owner}", and only its owner or a superuser can move it`
                  : installed?.relocatable
                    ? await tryMoveToExtensionSchema(client, e.name).then(
                        (err) => err && `moving it needs a superuser, and this control plane is not one: ${err.message}`,
                      )
                    : 'it is not relocatable';
              if (refused) {
                await client.query('ROLLBACK');
                problems.push(unsafeSchemaProblem(e.name, installed?.schema ?? '?', refused));
                this.p.logger.warn({ tenant: tenant.slug, extension: e.name, schema: installed?.schema, reason: refused }, 'extension not updated: it lives in a schema the tenant can create objects in');
                continue;
              }
              changes.push({ text: `moved ${e.name} from ${installed?.schema} to ${EXTENSION_SCHEMA}`, name: e.name, action: 'tenant.extension.moved', metadata: { from: installed?.schema ?? null, to: EXTENSION_SCHEMA } });
            }
            await client.query(updateExtension(e.name, target));
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
          changes.push({ text: `updated ${e.name} ${e.installedVersion} → ${target}`, name: e.name, action: 'tenant.extension.updated', metadata: { from: e.installedVersion, to: target } });
        }
        const { report: after, installed } = await readExtensionReport(client, policy);
        return { before, after, installed, changes, problems };
      });
      await this.p.db.$transaction(async (tx) => {
        await recordExtensions(tx, tenant.id, done.installed);
        for (const c of done.changes) {
          await recordAuditEvent(tx, op, { category: 'extension', action: c.action, tenant, subject: c.name, metadata: c.metadata });
        }
      });
      await this.p.changes.committed(tenant.id, { inventory: true });
      return { tenant, before: done.before, after: done.after, changes: done.changes.map((c) => c.text), problems: done.problems };
    });
  }
}

function unsafeSchemaProblem(name: string, schema: string, why: string): UserError {
  return new UserError(
    'EXTENSION_UNSAFE_SCHEMA',
    `extension ${name} was not updated: it lives in schema ${schema}, not ${EXTENSION_SCHEMA}, and its update script would run with ${schema} as search_path, where others than the control plane may create objects; ` +
      `Tenantry cannot move it to ${EXTENSION_SCHEMA} (${why}). As a superuser run ALTER EXTENSION ${name} SET SCHEMA ${EXTENSION_SCHEMA} in the tenant database, then run this again`,
  );
}
