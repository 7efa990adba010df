import { v7 as uuidv7 } from 'uuid';
import { Prisma, type AuditEvent } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsInOrder } from '../../platform/db/rows-in-order.js';
import type { Viewer } from '../../platform/viewer.js';

export type { AuditEvent };

/** Who did something, and under which request: carried into every audit event. */
export interface OperationContext {
  actor: string;
  correlationId: string;
}

/** What part of the fleet an event is about: a closed set (AuditCategory in the schema). */
export const AUDIT_CATEGORIES = ['tenant', 'quota', 'security', 'schema', 'extension', 'inventory', 'operation', 'connection', 'pool', 'cluster', 'move'] as const;
export type AuditCategory = (typeof AUDIT_CATEGORIES)[number];

interface AuditEventInput {
  category: AuditCategory;
  action: string;
  tenant?: { id: string; slug: string } | null;
  subject?: string | null;
  metadata?: Prisma.InputJsonValue;
}

type AuditWriter = Pick<ControlClient, 'auditEvent'> | Prisma.TransactionClient;

/** Appends one audit event (ids are UUIDv7, so they sort by time). Events are never updated. */
export async function recordAuditEvent(db: AuditWriter, op: OperationContext, event: AuditEventInput): Promise<void> {
  await db.auditEvent.create({ data: auditEventRow(op, event) });
}

/**
 * The INSERT of one audit event, for a change recorded by a single statement (a data-modifying
 * WITH: `WITH change AS (...), audited AS (${auditEventInsert(op, event, Prisma.sql`change`)}) SELECT ...`),
 * so the event commits with the change it describes in one round trip. One event per row of
 * `from` (a sibling of the WITH: no row, no event).
 */
export function auditEventInsert(op: OperationContext, event: AuditEventInput, from: Prisma.Sql): Prisma.Sql {
  const r = auditEventRow(op, event);
  return Prisma.sql`INSERT INTO audit_events (id, category, action, tenant_id, tenant_slug, actor, subject, correlation_id, metadata)
    SELECT ${r.id}::uuid, ${r.category}, ${r.action}, ${r.tenantId}::uuid, ${r.tenantSlug}, ${r.actor}, ${r.subject}, ${r.correlationId},
           ${r.metadata === undefined ? null : JSON.stringify(r.metadata)}::jsonb
      FROM ${from}`;
}

function auditEventRow(op: OperationContext, event: AuditEventInput): Prisma.AuditEventUncheckedCreateInput & { id: string } {
  return {
    id: uuidv7(),
    category: event.category,
    action: event.action,
    tenantId: event.tenant?.id ?? null,
    tenantSlug: event.tenant?.slug ?? null,
    actor: op.actor,
    subject: event.subject ?? null,
    correlationId: op.correlationId,
    metadata: event.metadata,
  };
}

interface AuditFilter {
  tenantSlug?: string | null;
  action?: string | null;
  category?: string | null;
  actor?: string | null;
  /** At or after this instant. */
  occurredAfter?: Date | null;
  /** Before this instant. */
  occurredBefore?: Date | null;
}

/** Events the caller may see (a tenant key: its own tenant's) that match the filter: a list and its totalCount share it. */
function matching(viewer: Viewer, filter: AuditFilter | null | undefined): Prisma.AuditEventWhereInput {
  return {
    AND: [
      viewer.role === 'ADMIN' ? {} : { tenantId: viewer.tenantId ?? '00000000-0000-0000-0000-000000000000' },
      filter?.tenantSlug ? { tenantSlug: filter.tenantSlug } : {},
      filter?.action ? { action: filter.action } : {},
      filter?.category ? { category: filter.category } : {},
      filter?.actor ? { actor: filter.actor } : {},
      filter?.occurredAfter ? { whenUtc: { gte: filter.occurredAfter } } : {},
      filter?.occurredBefore ? { whenUtc: { lt: filter.occurredBefore } } : {},
    ],
  };
}

/** A page of events, after/before an event id (keyset on UUIDv7). */
export interface AuditPage {
  after?: string;
  before?: string;
  limit: number;
  inverted: boolean;
}

/** The audit trail as lists read it (events are written with recordAuditEvent, inside the change they record). */
export class AuditLog {
  constructor(private readonly p: { db: ControlClient }) {}

  /** Events by id, in the order of `ids` (null where none). */
  async byIds(ids: readonly string[]): Promise<(AuditEvent | null)[]> {
    const rows = await this.p.db.auditEvent.findMany({ where: { id: { in: [...ids] } } });
    return rowsInOrder(ids, rows, (r) => r.id);
  }

  /** Newest first (ids are UUIDv7, so id order is time order); a tenant key sees its own tenant's events. */
  listAuditEvents(viewer: Viewer, p: AuditPage & { filter?: AuditFilter | null }): Promise<AuditEvent[]> {
    const where: Prisma.AuditEventWhereInput = {
      AND: [
        matching(viewer, p.filter),
        p.after ? { id: { lt: p.after } } : {},
        p.before ? { id: { gt: p.before } } : {},
      ],
    };
    return this.p.db.auditEvent.findMany({ where, orderBy: { id: p.inverted ? 'asc' : 'desc' }, take: p.limit });
  }

  /** How many events listAuditEvents gives over all its pages. */
  countAuditEvents(viewer: Viewer, filter?: AuditFilter | null): Promise<number> {
    return this.p.db.auditEvent.count({ where: matching(viewer, filter) });
  }

  /** How many events each tenant's trail holds, in the order of `tenantIds` (one query). */
  async countsByTenantIds(tenantIds: readonly string[]): Promise<number[]> {
    const rows = await this.p.db.auditEvent.groupBy({ by: ['tenantId'], where: { tenantId: { in: [...tenantIds] } }, _count: { _all: true } });
    return tenantIds.map((id) => rows.find((r) => r.tenantId === id)?._count._all ?? 0);
  }

  /**
   * One page of audit events for each of several tenants (a page of tenants, each asking
   * for the same page of its trail): one query, a window per tenant over audit_events.
   */
  async auditEventsByTenantIds(tenantIds: readonly string[], p: AuditPage): Promise<AuditEvent[][]> {
    if (tenantIds.length === 0 || p.limit <= 0) return tenantIds.map(() => []);
    const order = Prisma.raw(p.inverted ? 'ASC' : 'DESC');
    const rows = await this.p.db.$queryRaw<AuditEvent[]>`
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
}
