import type { AuditEvent, Prisma } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../db/control-client.js';
import type { Viewer } from '../keys/viewer.js';

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
