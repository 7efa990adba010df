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
import { createExtensionSchema, EXTENSION_SCHEMA, installedExtensions, moveExtension } from './extension-schema.sql.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { Config } from '../../platform/config.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { UserError } from '../../platform/errors.js';
import { inheritTenantRole } from './roles.sql.js';
import { lockSchemaVersionTable, SchemaVersionTableError } from './schema-version-record.js';

/** Who owns `public` and `extensions` in the tenant database, by name. */
const SCHEMA_OWNERS = `SELECT n.nspname AS name, pg_catalog.pg_get_userbyid(n.nspowner) AS owner,
    n.nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER) AS ours,
    n.nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'pg_database_owner') AS database_owner
  FROM pg_catalog.pg_namespace n WHERE n.nspname IN ('public', $1::pg_catalog.text)`;

/** Brings tenants under the ownership model (docs/security.md): the control plane owns what a tenant could turn against it. */
export class TenantSecurity {
  constructor(private readonly p: { db: ControlClient; config: Pick<Config, 'DEFAULT_MAX_CONNECTIONS' | 'CONNECTION_RESERVE'> }) {}

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
  async secureTenant(op: OperationContext, cluster: ClusterAdmin, tenant: Tenant): Promise<string[]> {
    const changes = await withTenantPrivileges(cluster, tenant, () => this.takeBack(cluster, tenant));
    await this.p.db.$transaction(async (tx) => {
      await tx.tenant.update({ where: { id: tenant.id }, data: { securedAt: new Date() } });
      await recordAuditEvent(tx, op, { category: 'security', action: 'tenant.secured', tenant, subject: tenant.databaseName, metadata: { changes } });
    });
    return changes;
  }

  /** For work that needs the ownership model (upgrades, extension updates): secures a legacy tenant first. */
  async ensureSecured(op: OperationContext, cluster: ClusterAdmin, tenant: Tenant): Promise<void> {
    if (!tenant.securedAt) await this.secureTenant(op, cluster, tenant);
  }

  /** The cluster side of securing a tenant; returns what was changed. */
  private async takeBack(cluster: ClusterAdmin, tenant: Tenant): Promise<string[]> {
    const db = tenant.databaseName;
    const changes: string[] = [];
    const facts = (await cluster.query<{ owned_by_us: boolean; datistemplate: boolean; datallowconn: boolean }>(databaseExists, [db])).rows[0];
    if (!facts) throw new UserError('NOT_FOUND', `database ${db} of tenant ${tenant.slug} does not exist`, 'slug');
    if (!facts.owned_by_us) {
      await cluster.query(setDatabaseOwnerToUs(db));
      changes.push('the database now belongs to the control plane');
    }
    if (facts.datistemplate || !facts.datallowconn) changes.push('the database is no longer a template and accepts connections again');
    const quota = await this.p.db.quota.findUnique({ where: { tenantId: tenant.id } });
    await cluster.query(resetDatabaseSettings(db));
    await cluster.query(setTenantSearchPath(db));
    await cluster.query(normaliseTenantDatabase(db, (quota?.maxConnections ?? this.p.config.DEFAULT_MAX_CONNECTIONS) + this.p.config.CONNECTION_RESERVE));
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
        await client.query(format('REVOKE ALL ON public."__SchemaVersion" FROM PUBLIC, %I; GRANT SELECT ON public."__SchemaVersion" TO PUBLIC', tenant.roleName));

        const installed = await client.query<{ name: string; schema: string; relocatable: boolean }>(installedExtensions);
        for (const e of installed.rows) {
          if (e.schema === EXTENSION_SCHEMA || e.schema === 'pg_catalog') continue;
          if (!e.relocatable) {
            changes.push(`extension ${e.name} stays in schema ${e.schema} (it cannot be moved)`);
            continue;
          }
          changes.push(
            (await tryMoveToExtensionSchema(client, e.name)) === null
              ? `extension ${e.name} moved from ${e.schema} to ${EXTENSION_SCHEMA}`
              : `extension ${e.name} stays in schema ${e.schema}: moving it needs a superuser (until then it is not updated)`,
          );
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });

    return changes;
  }
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

/**
 * ALTER EXTENSION … SET SCHEMA extensions, inside the caller's transaction: null when done, else the
 * error. Only a superuser may move a trusted extension (its objects belong to the bootstrap
 * superuser, whoever installed it), so a least-privilege control plane is refused (42501).
 */
export async function tryMoveToExtensionSchema(client: { query(sql: string): Promise<unknown> }, name: string): Promise<Error | null> {
  await client.query('SAVEPOINT move_extension');
  try {
    await client.query(moveExtension(name));
    return null;
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
    await client.query('ROLLBACK TO SAVEPOINT move_extension');
    return err as Error;
  }
}
