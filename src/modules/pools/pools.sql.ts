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

/**
 * The recorded pools an apply compares with what it wants: those of `tenantIds` and every one not
 * IN_SYNC (`unsettled`: the index on status serves it), or all of them (null). Raw: a Prisma model
 * query cost two to three times a raw one here (BENCHMARKS.md, seventh stop), once per pool change.
 */
export const recordedPools = (tenantIds: readonly string[] | null, unsettled: readonly string[]) => Prisma.sql`
  SELECT tenant_id::text AS "tenantId", name, mode, pool_size AS "poolSize", max_connections AS "maxConnections", status::text AS status, last_error AS "lastError"
    FROM pools
   ${tenantIds ? Prisma.sql`WHERE tenant_id = ANY(${[...tenantIds]}::uuid[]) OR status = ANY(${[...unsettled]}::"PoolStatus"[])` : Prisma.empty}`;

/** One pool's row rewritten: its spec and status (last_synced_at kept when `syncedAt` is null: not shown in sync). */
export const updatePool = (
  tenantId: string,
  row: { name: string; mode: string; poolSize: number; maxConnections: number },
  state: { status: string; lastError: string | null; syncedAt: Date | null },
  now: Date,
) => Prisma.sql`
  UPDATE pools SET name = ${row.name}, mode = ${row.mode}, pool_size = ${row.poolSize}, max_connections = ${row.maxConnections},
         status = ${state.status}::"PoolStatus", last_error = ${state.lastError},
         last_synced_at = COALESCE(${state.syncedAt}::timestamptz, last_synced_at), updated_at = ${now}
   WHERE tenant_id = ${tenantId}::uuid`;
