import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { Config } from '../../platform/config.js';
import { databaseExists, setDatabaseConnectionLimit, setDatabaseOwnerToUs, setRoleConnectionLimit } from '../tenants/index.js';

/**
 * What PostgreSQL enforces for a quota: the role's CONNECTION LIMIT (the quota) and the
 * database's (the quota plus CONNECTION_RESERVE for the control plane's own maintenance).
 */
export class ConnectionLimits {
  constructor(private readonly p: { config: Pick<Config, 'CONNECTION_RESERVE'> }) {}

  async applyConnectionLimits(cluster: ClusterAdmin, tenant: { roleName: string; databaseName: string }, quota: number): Promise<void> {
    const { rows } = await cluster.query<{ owned_by_us: boolean }>(databaseExists, [tenant.databaseName]);
    // A tenant provisioned before Tenantry owned tenant databases still owns its own.
    if (rows[0] && !rows[0].owned_by_us) await cluster.query(setDatabaseOwnerToUs(tenant.databaseName));
    // One transaction: both limits or neither.
    await cluster.query(`${setRoleConnectionLimit(tenant.roleName, quota)}; ${setDatabaseConnectionLimit(tenant.databaseName, quota + this.p.config.CONNECTION_RESERVE)}`);
  }
}
