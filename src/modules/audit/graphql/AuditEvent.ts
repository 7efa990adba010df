import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { AuditLog, type AuditEvent, type AuditPage } from '../audit-log.js';
import { canSeeTenant } from '../../../platform/viewer.js';
import { builder } from '../../../graphql/builder.js';
import { isUuid } from '../../../graphql/ids.js';
import { pageOptions } from '../../../graphql/pagination.js';

// AuditEvent.tenant and Tenant.auditEvents are the tenants module's (tenants/graphql/tenantFieldsOnOthers.ts).
export const AuditEventRef = builder.objectRef<AuditEvent>('AuditEvent');

builder.node(AuditEventRef, {
  description: 'Something that happened to the fleet: who, what, to which tenant, under which request.',
  id: { resolve: (e) => e.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.get(AuditLog).byIds(ids.filter(isUuid));
    // Events of no tenant (key management, fleet operations) are for admins; canSeeTenant says so.
    return ids.map((id) => rows.find((r) => r?.id === id && ctx.viewer && canSeeTenant(ctx.viewer, r.tenantId)) ?? null);
  },
  fields: (t) => ({
    when: t.expose('whenUtc', { type: 'DateTime' }),
    category: t.exposeString('category'),
    action: t.exposeString('action'),
    service: t.exposeString('service'),
    actor: t.exposeString('actor'),
    subject: t.exposeString('subject', { nullable: true }),
    correlationId: t.exposeString('correlationId', { nullable: true }),
    metadata: t.expose('metadata', { type: 'JSON', nullable: true }),
    tenantSlug: t.exposeString('tenantSlug', { nullable: true }),
  }),
});

const AuditEventFilter = builder.inputType('AuditEventFilter', {
  fields: (t) => ({
    tenantSlug: t.string({ required: false }),
    action: t.string({ required: false, description: 'Exact action, e.g. "tenant.provisioned".' }),
    category: t.string({ required: false }),
  }),
});

/** A page of the trail after/before the connection's cursors (a cursor that is no event id is ignored). */
export function auditPage({ before, after, limit, inverted }: ResolveCursorConnectionArgs): AuditPage {
  return { after: after && isUuid(after) ? after : undefined, before: before && isUuid(before) ? before : undefined, limit, inverted };
}

builder.queryField('auditEvents', (t) =>
  t.connection({
    type: AuditEventRef,
    description: 'The audit trail, newest first. A tenant key sees its own tenant\'s events.',
    args: { filter: t.arg({ type: AuditEventFilter }) },
    resolve: (_, args, ctx) =>
      resolveCursorConnection({ args, toCursor: (e: AuditEvent) => e.id, ...pageOptions(args, ctx.config) }, (page: ResolveCursorConnectionArgs) =>
        ctx.services.get(AuditLog).listAuditEvents(ctx.viewer!, { ...auditPage(page), filter: args.filter }),
      ),
  }),
);
