import type { ControlClient } from '../../platform/db/control-client.js';
import type { OperationItem } from '../../generated/prisma/client.js';
import { OperationItemStatus } from '../../generated/prisma/enums.js';

/**
 * A page of each operation's per-tenant results, in run order: at most `first` per operation
 * after `afterPosition`, with the given statuses. One query for a whole page of operations (a
 * window over operation_items, served by its (operation_id, position) index).
 */
export async function operationResultsByIds(
  db: ControlClient,
  operationIds: readonly string[],
  p: { statuses: readonly OperationItemStatus[] | null; first: number; afterPosition: number | null },
): Promise<OperationItem[][]> {
  if (p.first <= 0 || operationIds.length === 0) return operationIds.map(() => []);
  const statuses = p.statuses?.length ? [...p.statuses] : Object.values(OperationItemStatus);
  const rows = await db.$queryRaw<OperationItem[]>`
    SELECT operation_id::text AS "operationId", tenant_id::text AS "tenantId", tenant_slug AS "tenantSlug", position, status::text AS status,
           message, from_version AS "fromVersion", to_version AS "toVersion", started_at AS "startedAt", finished_at AS "finishedAt",
           canary, failure_cause::text AS "failureCause"
    FROM (SELECT i.*, row_number() OVER (PARTITION BY i.operation_id ORDER BY i.position) AS n
          FROM operation_items i
          WHERE i.operation_id = ANY(${[...operationIds]}::uuid[]) AND i.position > ${p.afterPosition ?? -1}
            AND i.status::text = ANY(${statuses}::text[])) ranked
    WHERE n <= ${p.first}
    ORDER BY position`;
  return operationIds.map((id) => rows.filter((r) => r.operationId === id));
}
