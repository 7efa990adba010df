import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import { terminateBackendsOf } from './backends.sql.js';
import { databaseExists, dropDatabase, setDatabaseOwnerToUs, unsealTemplateDatabase } from './databases.sql.js';
import { disableLogin, dropRole, readOnlyRolesOf, roleExists } from './roles.sql.js';

/**
 * Removes a tenant's database and role from the cluster, whatever state they are in: its
 * login is disabled first (no new sessions), its sessions are ended, a database the tenant
 * made a template (possible for a tenant that owned its database, before Tenantry owned them)
 * is unsealed, then both are dropped. Idempotent: missing objects are skipped.
 */
export async function dropTenantObjects(cluster: ClusterAdmin, tenant: { roleName: string; databaseName: string }): Promise<{ terminatedBackends: number }> {
  const role = await cluster.query(roleExists, [tenant.roleName]);
  if (role.rowCount) await cluster.query(disableLogin(tenant.roleName));
  const { rows } = await cluster.query<{ terminated: number }>(terminateBackendsOf, [tenant.roleName, tenant.databaseName]);
  const db = await cluster.query<{ owned_by_us: boolean; datistemplate: boolean }>(databaseExists, [tenant.databaseName]);
  if (db.rows[0]) {
    if (!db.rows[0].owned_by_us) await cluster.query(setDatabaseOwnerToUs(tenant.databaseName));
    if (db.rows[0].datistemplate) await cluster.query(unsealTemplateDatabase(tenant.databaseName));
    await cluster.query(dropDatabase(tenant.databaseName));
  }
  await cluster.query(dropRole(tenant.roleName));
  // Its read-only roles held privileges in that database only: nothing else keeps them.
  const readOnly = await cluster.query<{ rolname: string }>(readOnlyRolesOf, [tenant.roleName]);
  for (const { rolname } of readOnly.rows) await cluster.query(dropRole(rolname));
  return { terminatedBackends: rows[0]?.terminated ?? 0 };
}
