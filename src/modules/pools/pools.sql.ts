import { Prisma } from '../../generated/prisma/client.js';

/**
 * The pool every tenant that is ACTIVE or being provisioned should have: its cluster, database,
 * role and quota (one statement, whatever the fleet). A provisioning tenant's pool is added while
 * its database is made (nobody can log in through it before its password is set and handed
 * over), so that provisionTenant does not wait for the pooler at its end; a provisioning that
 * fails or is rolled back takes it away again.
 */
const DESIRED = Prisma.sql`
  SELECT t.id::text AS tenant_id, t.cluster_id::text AS cluster_id, t.database_name, t.role_name, q.max_connections, t.status = 'PROVISIONING' AS provisioning
    FROM tenants t JOIN quotas q ON q.tenant_id = t.id
   WHERE t.status IN ('ACTIVE', 'PROVISIONING')`;

export const desiredPools = Prisma.sql`${DESIRED} ORDER BY t.database_name`;

/** The same, for these tenants only (an apply after a change reads the changed tenants, not the fleet). */
export const desiredPoolsOf = (tenantIds: readonly string[]) => Prisma.sql`${DESIRED} AND t.id = ANY(${[...tenantIds]}::uuid[])`;

export interface DesiredPoolRow {
  tenant_id: string;
  cluster_id: string;
  database_name: string;
  role_name: string;
  max_connections: number;
  /** Being provisioned: its ACCESS step grants the pooler's login itself (the reconciler leaves it alone). */
  provisioning: boolean;
}
