import type { Config } from '../../platform/config.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import { buildConnectionString } from '../../platform/db/connection-url.js';

/** Where a tenant's pool is reached (one PgBouncer of several has it); null without a pooler. */
interface PoolerAddresses {
  addressOf(databaseName: string): { host: string; port: number };
}

/** A place a tenant connects to, and as whom (no password). */
export interface Endpoint {
  host: string;
  port: number;
  database: string;
  user: string;
}

/** The connection strings handed to tenants: direct to their cluster, and through the pooler when there is one. */
export class ConnectionStrings {
  constructor(private readonly p: { pooler: PoolerAddresses | null; config: Pick<Config, 'TENANT_HOST'> }) {}

  tenantConnectionStrings(cluster: ClusterAdmin, tenant: { roleName: string; databaseName: string }, password: string): { direct: string; pooled: string | null } {
    const { direct, pooled } = this.tenantEndpoints(cluster, tenant);
    return {
      direct: buildConnectionString({ ...direct, password }),
      pooled: pooled ? buildConnectionString({ ...pooled, password }) : null,
    };
  }

  /** What the connection strings hold but the password: where the tenant connects, and as whom. */
  tenantEndpoints(cluster: Pick<ClusterAdmin, 'host' | 'port'>, tenant: { roleName: string; databaseName: string }): { direct: Endpoint; pooled: Endpoint | null } {
    const pooler = this.p.pooler?.addressOf(tenant.databaseName);
    const host = this.p.config.TENANT_HOST;
    const login = { user: tenant.roleName, database: tenant.databaseName };
    return {
      direct: { host: host ?? cluster.host, port: cluster.port, ...login },
      pooled: pooler ? { host: host ?? pooler.host, port: pooler.port, ...login } : null,
    };
  }
}
