import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import { buildConnectionString } from '../../platform/db/connection-url.js';
import type { Deps } from '../../deps.js';

/** A tenant's connection strings with this password: direct to PostgreSQL, and through the pooler (null without one). */
export function tenantConnectionStrings(
  deps: Deps,
  cluster: ClusterAdmin,
  tenant: { roleName: string; databaseName: string },
  password: string,
): { direct: string; pooled: string | null } {
  const credentials = { user: tenant.roleName, password, database: tenant.databaseName };
  const pooler = deps.pooler.address;
  return {
    direct: buildConnectionString({ host: deps.config.TENANT_HOST ?? cluster.host, port: cluster.port, ...credentials }),
    pooled: pooler ? buildConnectionString({ host: deps.config.TENANT_HOST ?? pooler.host, port: pooler.port, ...credentials }) : null,
  };
}
