import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import type { AuditEvent } from '../../../generated/prisma/client.js';
import { auditEventsByTenantIds, listAuditEvents, type AuditFilter } from '../audit-queries.js';
import { canSeeTenant } from '../../../platform/viewer.js';
import { tenantsByIds } from '../../tenants/tenant-queries.js';
import { builder } from '../../../graphql/builder.js';
import type { GraphQLContext } from '../../../graphql/context.js';
import { isUuid } from '../../../graphql/ids.js';
import { pageOptions } from '../../../graphql/pagination.js';
import { TenantRef } from '../../tenants/graphql/Tenant.js';

export const AuditEventRef = builder.objectRef<AuditEvent>('AuditEvent');

builder.node(AuditEventRef, {
  description: 'Something that happened to the fleet: who, what, to which tenant, under which request.',
  id: { resolve: (e) => e.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.deps.db.auditEvent.findMany({ where: { id: { in: ids.filter(isUuid) } } });
    return ids.map((id) => {
      const row = rows.find((r) => r.id === id);
      // Events of no tenant (key management, fleet operations) are for admins; canSeeTenant says so.
      return row && ctx.viewer && canSeeTenant(ctx.viewer, row.tenantId) ? row : null;
    });
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
    tenant: t.loadable({
      type: TenantRef,
      nullable: true,
      load: (ids: string[], ctx) => tenantsByIds(ctx.deps.db, ids),
      resolve: (e) => e.tenantId,
    }),
  }),
});

interface ConnectionArgs {
  first?: number | null;
  last?: number | null;
  after?: string | null;
  before?: string | null;
}

const AuditEventFilter = builder.inputType('AuditEventFilter', {
  fields: (t) => ({
    tenantSlug: t.string({ required: false }),
    action: t.string({ required: false, description: 'Exact action, e.g. "tenant.provisioned".' }),
    category: t.string({ required: false }),
  }),
});

function auditConnection(ctx: GraphQLContext, args: ConnectionArgs, filter: AuditFilter | null | undefined) {
  return resolveCursorConnection(
    { args, toCursor: (e: AuditEvent) => e.id, ...pageOptions(args, ctx.deps.config) },
    ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
      listAuditEvents(ctx.deps.db, ctx.viewer!, {
        filter,
        after: after && isUuid(after) ? after : undefined,
        before: before && isUuid(before) ? before : undefined,
        limit,
        inverted,
      }),
  );
}

builder.queryField('auditEvents', (t) =>
  t.connection({
    type: AuditEventRef,
    description: 'The audit trail, newest first. A tenant key sees its own tenant\'s events.',
    args: { filter: t.arg({ type: AuditEventFilter }) },
    resolve: (_, args, ctx) => auditConnection(ctx, args, args.filter),
  }),
);

builder.objectField(TenantRef, 'auditEvents', (t) =>
  t.connection({
    type: AuditEventRef,
    description: 'This tenant\'s audit trail, newest first (for a page of tenants, one query for all of them).',
    resolve: (tenant, args, ctx) =>
      resolveCursorConnection(
        { args, toCursor: (e: AuditEvent) => e.id, ...pageOptions(args, ctx.deps.config) },
        ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) => {
          // The tenant is visible (it was resolved for this caller), so is its whole trail.
          const page = { after: after && isUuid(after) ? after : undefined, before: before && isUuid(before) ? before : undefined, limit, inverted };
          return ctx.loader<string, AuditEvent[]>('tenant-audit-events', page, (ids) => auditEventsByTenantIds(ctx.deps.db, ids, page)).load(tenant.id);
        },
      ),
  }),
);
