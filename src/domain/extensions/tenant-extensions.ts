import type pg from 'pg';
import type { ControlClient } from '../../db/control-client.js';
import type { Prisma, Tenant } from '../../generated/prisma/client.js';
import { availableExtensionVersions, EXTENSION_SCHEMA, extensionsNotOurs, installedExtensions, updateExtension } from '../../sql/extensions.sql.js';
import { installExtension } from './install-extensions.js';
import { afterCommit } from '../tenants/after-commit.js';
import { ensureSecured } from '../tenants/secure-tenant.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../deps.js';
import type { TemplateVersion } from '../templates/template-catalog.js';
import { assertSettled, withTenant, type Visible } from '../tenants/tenant-access.js';
import { extensionReport, offeredVersions, type ExtensionReport } from './extension-status.js';
import { compareExtensionVersions, meetsMinimum } from './extension-versions.js';

/** The policy a tenant database answers to: its template version's. */
export function policyOf(deps: Deps, tenant: Pick<Tenant, 'templateName' | 'templateVersion'>): TemplateVersion['extensions'] {
  return deps.catalog.resolve(tenant.templateName, tenant.templateVersion)?.extensions ?? { required: [], optional: [] };
}

function policyNames(policy: TemplateVersion['extensions']): string[] {
  return [...policy.required, ...policy.optional].map((e) => e.name);
}

/** What is installed in a database, by name (plpgsql, part of every database, left out). */
export async function readInstalledExtensions(client: pg.ClientBase): Promise<Map<string, string>> {
  const { rows } = await client.query<{ name: string; version: string }>(installedExtensions);
  return new Map(rows.filter((r) => r.name !== 'plpgsql').map((r) => [r.name, r.version]));
}

/** Reads installed and offered versions inside a tenant database and judges them. */
export async function readExtensionReport(client: pg.ClientBase, policy: TemplateVersion['extensions']): Promise<{ report: ExtensionReport[]; installed: Map<string, string> }> {
  const [installed, offered] = await Promise.all([
    readInstalledExtensions(client),
    client.query<{ name: string; version: string }>(availableExtensionVersions, [policyNames(policy)]),
  ]);
  return { report: extensionReport(policy, installed, offeredVersions(offered.rows)), installed };
}

/** Records what is installed, so lists show extension state without opening the database (in the caller's transaction, if any). */
export async function recordExtensions(db: ControlClient | Prisma.TransactionClient, tenantId: string, installed: ReadonlyMap<string, string>): Promise<void> {
  const rows = [...installed];
  const write = async (tx: Prisma.TransactionClient) => {
    await tx.tenantExtension.deleteMany({ where: { tenantId, name: { notIn: rows.map(([name]) => name) } } });
    for (const [name, version] of rows) {
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
  /** What was done: "installed pg_trgm 1.6", "updated pg_trgm 1.3 → 1.6". */
  changes: string[];
}

/**
 * Installs missing extensions and updates outdated ones to the newest version the server
 * offers, as the control plane, in the tenant database's extensions schema (a legacy tenant
 * is secured first). What changed is recorded with one audit event per change, in one
 * control-database transaction.
 */
export async function updateTenantExtensions(deps: Deps, op: OperationContext, input: { slug: string }, visible: Visible = () => true): Promise<ExtensionUpdate> {
  return withTenant(deps, input.slug, visible, async (tenant, cluster) => {
    assertSettled(tenant, 'an extension update');
    await ensureSecured(deps, op, cluster, tenant);
    const policy = policyOf(deps, tenant);
    const done = await cluster.withDatabase(tenant.databaseName, async (client) => {
      const { report: before } = await readExtensionReport(client, policy);
      const changes: { text: string; name: string; from: string | null; to: string; skipped?: boolean }[] = [];
      const schemas = new Map((await client.query<{ name: string; schema: string }>(installedExtensions)).rows.map((r) => [r.name, r.schema]));
      const offered = offeredVersions((await client.query<{ name: string; version: string }>(availableExtensionVersions, [policyNames(policy)])).rows);
      const notOurs = new Map((await client.query<{ name: string; owner: string }>(extensionsNotOurs)).rows.map((r) => [r.name, r.owner]));
      for (const e of before) {
        if (e.status !== 'MISSING' && e.status !== 'OUTDATED') continue;
        const min = [...policy.required, ...policy.optional].find((p) => p.name === e.name)?.minVersion;
        const target = (offered.get(e.name) ?? []).filter((v) => meetsMinimum(v, min)).sort(compareExtensionVersions).at(-1);
        if (!target) continue;
        if (e.status === 'MISSING') {
          await installExtension(client, e.name, target);
          changes.push({ text: `installed ${e.name} ${target}`, name: e.name, from: null, to: target });
        } else {
          // An update script runs with the extension's schema as search_path: never in one the tenant can create objects in.
          const schema = schemas.get(e.name);
          if (schema !== EXTENSION_SCHEMA && schema !== 'pg_catalog') {
            deps.logger.warn({ tenant: tenant.slug, extension: e.name, schema }, 'extension not updated: it lives in a schema the tenant can create objects in');
            continue;
          }
          const owner = notOurs.get(e.name);
          if (owner !== undefined) {
            // Installed while Tenantry ran as a superuser (README, "Switching an existing install to a least-privilege role").
            const text = `${e.name} stays at ${e.installedVersion}: it belongs to "${owner}", and only its owner or a superuser can update it; as a superuser, in database "${tenant.databaseName}", run ${updateExtension(e.name, target)}`;
            deps.logger.warn({ tenant: tenant.slug, extension: e.name, owner }, 'extension not updated: the control plane does not own it');
            changes.push({ text, name: e.name, from: e.installedVersion, to: target, skipped: true });
            continue;
          }
          await client.query(updateExtension(e.name, target));
          changes.push({ text: `updated ${e.name} ${e.installedVersion} → ${target}`, name: e.name, from: e.installedVersion, to: target });
        }
      }
      const { report: after, installed } = await readExtensionReport(client, policy);
      return { before, after, installed, changes };
    });
    await deps.db.$transaction(async (tx) => {
      await recordExtensions(tx, tenant.id, done.installed);
      for (const c of done.changes) {
        if (c.skipped) continue;
        await recordAuditEvent(tx, op, { category: 'extension', action: 'tenant.extension.updated', tenant, subject: c.name, metadata: { from: c.from, to: c.to } });
      }
    });
    await afterCommit(deps, { tenantId: tenant.id, inventory: true });
    return { tenant, before: done.before, after: done.after, changes: done.changes.map((c) => c.text) };
  });
}
