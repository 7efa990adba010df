import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { dropTenantObjects } from '../tenants/drop-tenant-objects.js';

/** Drops what a provisioning attempt created; false (logged) when that failed too, so the row keeps its step. */
export async function rollBackProvisioning(deps: Deps, cluster: ClusterAdmin, tenant: { slug: string; roleName: string; databaseName: string }, op: OperationContext): Promise<boolean> {
  try {
    await dropTenantObjects(cluster, tenant);
    return true;
  } catch (err) {
    deps.logger.error({ err, correlationId: op.correlationId, tenant: tenant.slug }, 'rolling back a failed provisioning failed');
    return false;
  }
}
