import { v7 as uuidv7 } from 'uuid';
import type { Prisma } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';

/** Who did something, and under which request: carried into every audit event. */
export interface OperationContext {
  actor: string;
  correlationId: string;
}

export interface AuditEventInput {
  category: string;
  action: string;
  tenant?: { id: string; slug: string } | null;
  subject?: string | null;
  metadata?: Prisma.InputJsonValue;
}

type AuditWriter = Pick<ControlClient, 'auditEvent'> | Prisma.TransactionClient;

/** Appends one audit event (ids are UUIDv7, so they sort by time). Events are never updated. */
export async function recordAuditEvent(db: AuditWriter, op: OperationContext, event: AuditEventInput): Promise<void> {
  await db.auditEvent.create({
    data: {
      id: uuidv7(),
      category: event.category,
      action: event.action,
      tenantId: event.tenant?.id ?? null,
      tenantSlug: event.tenant?.slug ?? null,
      actor: op.actor,
      subject: event.subject ?? null,
      correlationId: op.correlationId,
      metadata: event.metadata,
    },
  });
}
