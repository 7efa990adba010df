import { Prisma } from '../../generated/prisma/client.js';

/** The pool every active tenant should have: its database, role and quota (one statement, whatever the fleet). */
export const desiredPools = Prisma.sql`
  SELECT t.id::text AS tenant_id, t.database_name, t.role_name, q.max_connections
    FROM tenants t JOIN quotas q ON q.tenant_id = t.id
   WHERE t.status = 'ACTIVE'
   ORDER BY t.database_name`;
