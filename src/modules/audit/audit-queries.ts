import { Prisma, type AuditEvent } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { Viewer } from '../../platform/viewer.js';

export interface AuditFilter {
  tenantSlug?: string | null;
  action?: string | null;
  category?: string | null;
}

/** Newest first (ids are UUIDv7, so id order is time order); a tenant key sees its own tenant's events. */
export async function listAuditEvents(
  db: ControlClient,
  viewer: Viewer,
  p: { filter?: AuditFilter | null; tenantId?: string; after?: string; before?: string; limit: number; inverted: boolean },
): Promise<AuditEvent[]> {
  const where: Prisma.AuditEventWhereInput = {
    AND: [
      viewer.role === 'ADMIN' ? {} : { tenantId: viewer.tenantId ?? '00000000-0000-0000-0000-000000000000' },
      p.tenantId ? { tenantId: p.tenantId } : {},
      p.filter?.tenantSlug ? { tenantSlug: p.filter.tenantSlug } : {},
      p.filter?.action ? { action: p.filter.action } : {},
      p.filter?.category ? { category: p.filter.category } : {},
      p.after ? { id: { lt: p.after } } : {},
      p.before ? { id: { gt: p.before } } : {},
    ],
  };
  return db.auditEvent.findMany({ where, orderBy: { id: p.inverted ? 'asc' : 'desc' }, take: p.limit });
}

/**
 * One page of audit events for each of several tenants (a page of tenants, each asking
 * for the same page of its trail): one query, a window per tenant over audit_events.
 */
export async function auditEventsByTenantIds(
  db: ControlClient,
  tenantIds: readonly string[],
  p: { after?: string; before?: string; limit: number; inverted: boolean },
): Promise<AuditEvent[][]> {
  if (tenantIds.length === 0 || p.limit <= 0) return tenantIds.map(() => []);
  const order = Prisma.raw(p.inverted ? 'ASC' : 'DESC');
  const rows = await db.$queryRaw<AuditEvent[]>`
    SELECT id::text AS id, when_utc AS "whenUtc", tenant_id::text AS "tenantId", tenant_slug AS "tenantSlug", category, action, service,
           actor, subject, correlation_id AS "correlationId", metadata
    FROM (SELECT e.*, row_number() OVER (PARTITION BY e.tenant_id ORDER BY e.id ${order}) AS n
          FROM audit_events e
          WHERE e.tenant_id = ANY(${[...tenantIds]}::uuid[])
            ${p.after ? Prisma.sql`AND e.id < ${p.after}::uuid` : Prisma.empty}
            ${p.before ? Prisma.sql`AND e.id > ${p.before}::uuid` : Prisma.empty}) ranked
    WHERE n <= ${p.limit}
    ORDER BY id ${order}`;
  return tenantIds.map((id) => rows.filter((r) => r.tenantId === id));
}
