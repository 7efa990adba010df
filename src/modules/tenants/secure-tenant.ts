import format from 'pg-format';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { Tenant } from '../../generated/prisma/client.js';
import {
  databaseExists,
  grantTenantDatabaseAccess,
  normaliseTenantDatabase,
  resetDatabaseSettings,
  revokeConnectFromPublic,
  setDatabaseOwnerToUs,
  setTenantSearchPath,
} from './databases.sql.js';
import { createExtensionSchema, EXTENSION_SCHEMA, installedExtensions, moveExtension } from '../extensions/extensions.sql.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { UserError } from '../../platform/errors.js';
import { inheritTenantRole } from './roles.sql.js';
import { lockSchemaVersionTable, SchemaVersionTableError } from './schema-version-record.js';

/** Who owns `public` and `extensions` in the tenant database, by name. */
const SCHEMA_OWNERS = `SELECT n.nspname AS name, pg_catalog.pg_get_userbyid(n.nspowner) AS owner,
    n.nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER) AS ours,
    n.nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'pg_database_owner') AS database_owner
  FROM pg_catalog.pg_namespace n WHERE n.nspname IN ('public', $1::pg_catalog.text)`;

/**
 * Brings a tenant provisioned before Tenantry owned tenant databases (the tenant owned its
 * own, and with it `public`) under the ownership model that new tenants get at provisioning:
 * the database is the control plane's, with no database-level settings but ours, not a
 * template, CONNECT and TEMPORARY for the tenant; `public` belongs to the database owner with
 * USAGE and CREATE for the tenant; `__SchemaVersion` is the control plane's untouched plain
 * table, readable by all; extensions live in a schema only the control plane can create in.
 *
 * Nothing the tenant made is run: every check reads the catalog, and `__SchemaVersion` is
 * checked under a lock. A database the tenant tampered with (a replaced `__SchemaVersion`, a
 * schema `extensions` of its own) fails this tenant only, with the reason. Idempotent; the
 * caller holds the tenant's lock. Returns what was changed.
 */
export async function secureTenant(deps: Deps, op: OperationContext, cluster: ClusterAdmin, tenant: Tenant): Promise<string[]> {
  const changes = await withTenantPrivileges(cluster, tenant, () => takeBack(deps, cluster, tenant));
  await deps.db.$transaction(async (tx) => {
    await tx.tenant.update({ where: { id: tenant.id }, data: { securedAt: new Date() } });
    await recordAuditEvent(tx, op, { category: 'security', action: 'tenant.secured', tenant, subject: tenant.databaseName, metadata: { changes } });
  });
  return changes;
}

/** The cluster side of securing a tenant; returns what was changed. */
async function takeBack(deps: Deps, cluster: ClusterAdmin, tenant: Tenant): Promise<string[]> {
  const db = tenant.databaseName;
  const changes: string[] = [];
  const { rows } = await cluster.query<{ owned_by_us: boolean; datistemplate: boolean; datallowconn: boolean }>(databaseExists, [db]);
  const facts = rows[0];
  if (!facts) throw new UserError('NOT_FOUND', `database ${db} of tenant ${tenant.slug} does not exist`, 'slug');
  if (!facts.owned_by_us) {
    await cluster.query(setDatabaseOwnerToUs(db));
    changes.push('the database now belongs to the control plane');
  }
  if (facts.datistemplate || !facts.datallowconn) changes.push('the database is no longer a template and accepts connections again');
  const quota = await deps.db.quota.findUnique({ where: { tenantId: tenant.id } });
  await cluster.query(resetDatabaseSettings(db));
  await cluster.query(setTenantSearchPath(db));
  await cluster.query(normaliseTenantDatabase(db, (quota?.maxConnections ?? deps.config.DEFAULT_MAX_CONNECTIONS) + deps.config.CONNECTION_RESERVE));
  await cluster.query(revokeConnectFromPublic(db));
  await cluster.query(grantTenantDatabaseAccess(db, tenant.roleName));

  await cluster.withDatabase(db, async (client) => {
    await client.query('BEGIN');
    try {
      const owners = new Map(
        (await client.query<{ name: string; owner: string; ours: boolean; database_owner: boolean }>(SCHEMA_OWNERS, [EXTENSION_SCHEMA])).rows.map((r) => [r.name, r]),
      );
      const pub = owners.get('public');
      if (pub && !pub.ours && !pub.database_owner) {
        await client.query('ALTER SCHEMA public OWNER TO pg_database_owner');
        changes.push(`schema public taken back from ${pub.owner}`);
      }
      await client.query(format('GRANT USAGE, CREATE ON SCHEMA public TO %I', tenant.roleName));
      const ext = owners.get(EXTENSION_SCHEMA);
      if (ext && !ext.ours) {
        throw new UserError('INVALID_INPUT', `schema ${EXTENSION_SCHEMA} in ${db} belongs to ${ext.owner}; extensions cannot be kept safe in it (rename it, then run this again)`, 'slug');
      }
      if (!ext) changes.push(`schema ${EXTENSION_SCHEMA} created`);
      await client.query(createExtensionSchema);

      await lockSchemaVersionTable(client).catch((err) => {
        if (err instanceof SchemaVersionTableError) throw new UserError('INVALID_INPUT', `tenant ${tenant.slug}: ${err.message}; restore it by hand before securing this tenant`, 'slug');
        throw err;
      });
      await client.query(`REVOKE ALL ON public."__SchemaVersion" FROM PUBLIC`);
      await client.query(format(`REVOKE ALL ON public."__SchemaVersion" FROM %I`, tenant.roleName));
      await client.query(`GRANT SELECT ON public."__SchemaVersion" TO PUBLIC`);

      const installed = await client.query<{ name: string; schema: string; relocatable: boolean }>(installedExtensions);
      for (const e of installed.rows) {
        if (e.schema === EXTENSION_SCHEMA || e.schema === 'pg_catalog') continue;
        if (!e.relocatable) {
          changes.push(`extension ${e.name} stays in schema ${e.schema} (it cannot be moved)`);
          continue;
        }
        await client.query('SAVEPOINT move_extension');
        try {
          await client.query(moveExtension(e.name));
          changes.push(`extension ${e.name} moved from ${e.schema} to ${EXTENSION_SCHEMA}`);
        } catch (err) {
          if ((err as { code?: string }).code !== '42501') throw err;
          // Its objects belong to the bootstrap superuser (a trusted extension): only a superuser can move them.
          await client.query('ROLLBACK TO SAVEPOINT move_extension');
          changes.push(`extension ${e.name} stays in schema ${e.schema}: moving it needs a superuser (until then it is not updated)`);
        }
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });

  return changes;
}

/**
 * Taking back what the tenant owns (its database, `public`) needs the privileges of the tenant's
 * role. A superuser has them, and so does a least-privilege control plane on PostgreSQL 15 (a
 * plain member). On 16+ it holds the tenant role WITH INHERIT FALSE and turns inheriting on for
 * the duration of `work` only. A tenant role it has no ADMIN option on (made by an earlier
 * control plane running as another role) needs a superuser's grant once; the error says which.
 */
async function withTenantPrivileges<T>(cluster: ClusterAdmin, tenant: Tenant, work: () => Promise<T>): Promise<T> {
  const me = await cluster.identity();
  if (me.superuser || me.serverVersionNum < 160000) return work();
  try {
    await cluster.query(inheritTenantRole(tenant.roleName, true));
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
    throw new UserError(
      'INVALID_INPUT',
      `tenant ${tenant.slug}: its role ${tenant.roleName} owns what must be taken back, and this control plane cannot act for it; as a superuser run ` +
        format('GRANT %I TO %I WITH ADMIN TRUE, INHERIT FALSE, SET TRUE', tenant.roleName, me.role) +
        ', then run this again',
      'slug',
    );
  }
  try {
    return await work();
  } finally {
    await cluster.query(inheritTenantRole(tenant.roleName, false));
  }
}

/** For work that needs the ownership model (upgrades, extension updates): secures a legacy tenant first. */
export async function ensureSecured(deps: Deps, op: OperationContext, cluster: ClusterAdmin, tenant: Tenant): Promise<void> {
  if (!tenant.securedAt) await secureTenant(deps, op, cluster, tenant);
}
