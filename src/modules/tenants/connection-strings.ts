import type { Config } from '../../platform/config.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import { buildConnectionString } from '../../platform/db/connection-url.js';

/** Where tenants reach the pooler (null without one). */
interface PoolerAddress {
  host: string;
  port: number;
}

/** The connection strings handed to tenants: direct to their cluster, and through the pooler when there is one. */
export class ConnectionStrings {
  constructor(private readonly p: { poolerAddress: PoolerAddress | null; config: Pick<Config, 'TENANT_HOST'> }) {}

  tenantConnectionStrings(cluster: ClusterAdmin, tenant: { roleName: string; databaseName: string }, password: string): { direct: string; pooled: string | null } {
    const credentials = { user: tenant.roleName, password, database: tenant.databaseName };
    const pooler = this.p.poolerAddress;
    const host = this.p.config.TENANT_HOST;
    return {
      direct: buildConnectionString({ host: host ?? cluster.host, port: cluster.port, ...credentials }),
      pooled: pooler ? buildConnectionString({ host: host ?? pooler.host, port: pooler.port, ...credentials }) : null,
    };
  }
}
