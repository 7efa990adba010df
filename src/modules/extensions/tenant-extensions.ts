import type pg from 'pg';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { Prisma, Tenant } from '../../generated/prisma/client.js';
import { availableExtensionVersions, EXTENSION_SCHEMA, extensionsNotOurs, installedExtensions, moveExtension, updateExtension } from './extensions.sql.js';
import { installExtension } from './install-extensions.js';
import { afterCommit } from '../tenants/after-commit.js';
import { ensureSecured } from '../tenants/secure-tenant.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { UserError } from '../../platform/errors.js';
import { nextStep } from '../../platform/locks/locking.js';
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
export async function updateTenantExtensions(deps: Deps, op: OperationContext, input: { slug: string }, visible: Visible = () => true): Promise<ExtensionUpdate> {
  return withTenant(deps, input.slug, visible, async (tenant, cluster) => {
    assertSettled(tenant, 'an extension update');
    await ensureSecured(deps, op, cluster, tenant);
    const policy = policyOf(deps, tenant);
    const done = await cluster.withDatabase(tenant.databaseName, async (client) => {
      const { report: before } = await readExtensionReport(client, policy);
      const changes: Change[] = [];
      const problems: UserError[] = [];
      const where = new Map((await client.query<{ name: string; schema: string; relocatable: boolean }>(installedExtensions)).rows.map((r) => [r.name, r]));
      const offered = offeredVersions((await client.query<{ name: string; version: string }>(availableExtensionVersions, [policyNames(policy)])).rows);
      const notOurs = new Map((await client.query<{ name: string; owner: string }>(extensionsNotOurs)).rows.map((r) => [r.name, r.owner]));
      for (const e of before) {
        if (e.status !== 'MISSING' && e.status !== 'OUTDATED') continue;
        const min = [...policy.required, ...policy.optional].find((p) => p.name === e.name)?.minVersion;
        const target = (offered.get(e.name) ?? []).filter((v) => meetsMinimum(v, min)).sort(compareExtensionVersions).at(-1);
        if (!target) continue;
        await nextStep(deps, `extensions.${e.name}`, tenant.slug);
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
          deps.logger.warn({ tenant: tenant.slug, extension: e.name, owner }, 'extension not updated: the control plane does not own it');
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
                  ? await tryMoveToExtensionSchema(client, e.name)
                  : 'it is not relocatable';
            if (refused) {
              await client.query('ROLLBACK');
              problems.push(unsafeSchemaProblem(e.name, installed?.schema ?? '?', refused));
              deps.logger.warn({ tenant: tenant.slug, extension: e.name, schema: installed?.schema, reason: refused }, 'extension not updated: it lives in a schema the tenant can create objects in');
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
    await deps.db.$transaction(async (tx) => {
      await recordExtensions(tx, tenant.id, done.installed);
      for (const c of done.changes) {
        await recordAuditEvent(tx, op, { category: 'extension', action: c.action, tenant, subject: c.name, metadata: c.metadata });
      }
    });
    await afterCommit(deps, { tenantId: tenant.id, inventory: true });
    return { tenant, before: done.before, after: done.after, changes: done.changes.map((c) => c.text), problems: done.problems };
  });
}

/**
 * ALTER EXTENSION … SET SCHEMA extensions, inside the caller's transaction: null when done, else
 * why not. Only a superuser may move a trusted extension (its objects belong to the bootstrap
 * superuser, whoever installed it), so a least-privilege control plane is refused (42501).
 */
async function tryMoveToExtensionSchema(client: pg.ClientBase, name: string): Promise<string | null> {
  await client.query('SAVEPOINT move_extension');
  try {
    await client.query(moveExtension(name));
    return null;
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
    await client.query('ROLLBACK TO SAVEPOINT move_extension');
    return `moving it needs a superuser, and this control plane is not one: ${(err as Error).message}`;
  }
}

function unsafeSchemaProblem(name: string, schema: string, why: string): UserError {
  return new UserError(
    'EXTENSION_UNSAFE_SCHEMA',
    `extension ${name} was not updated: it lives in schema ${schema}, not ${EXTENSION_SCHEMA}, and its update script would run with ${schema} as search_path, where others than the control plane may create objects; ` +
      `Tenantry cannot move it to ${EXTENSION_SCHEMA} (${why}). As a superuser run ALTER EXTENSION ${name} SET SCHEMA ${EXTENSION_SCHEMA} in the tenant database, then run this again`,
  );
}
