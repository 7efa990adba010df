import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { AUDIT_CATEGORIES, AuditLog, type AuditCategory, type AuditEvent, type AuditPage } from '../audit-log.js';
import { canSeeTenant } from '../../../platform/viewer.js';
import { builder } from '../../../graphql/builder.js';
import { isUuid } from '../../../graphql/ids.js';
import { pageOptions } from '../../../graphql/pagination.js';
import { countedConnection, withTotalCount } from '../../../graphql/total-count.js';

// AuditEvent.tenant and Tenant.auditEvents are the tenants module's (tenants/graphql/tenantFieldsOnOthers.ts).
export const AuditEventRef = builder.objectRef<AuditEvent>('AuditEvent');

const CATEGORY_DESCRIPTIONS: Record<AuditCategory, string> = {
  tenant: 'A tenant\'s life: provisioned, suspended, resumed, deprovisioned, drift repaired.',
  quota: 'A quota change and the sessions it ended.',
  security: 'Keys, credentials, authentication failures, securing tenants.',
  schema: 'A tenant\'s schema upgraded (or not).',
  extension: 'A tenant\'s extensions changed.',
  inventory: 'What a tenant\'s database holds, checked and refreshed.',
  operation: 'A fleet operation started, finished or cancelled.',
  connection: 'A tenant\'s session terminated.',
  pool: 'The pooler\'s configuration reconciled.',
  cluster: 'Clusters: registered, updated, cordoned, drained, removed.',
  move: 'Tenant moves between clusters, at each phase.',
};
const AuditCategoryEnum = builder.enumType('AuditCategory', {
  description: 'What part of the fleet an audit event is about.',
  values: Object.fromEntries(AUDIT_CATEGORIES.map((c) => [c.toUpperCase(), { value: c, description: CATEGORY_DESCRIPTIONS[c] }])) as Record<
    Uppercase<AuditCategory>,
    { value: AuditCategory; description: string }
  >,
});

/** Query.auditEvents' and Tenant.auditEvents' page type. */
export const AuditEventConnectionRef = countedConnection(AuditEventRef, 'AuditEvent', 'audit events');

builder.node(AuditEventRef, {
  description: 'Something that happened to the fleet: who, what, to which tenant, under which request.',
  id: { resolve: (e) => e.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.get(AuditLog).byIds(ids.filter(isUuid));
    // Events of no tenant (key management, fleet operations) are for admins; canSeeTenant says so.
    return ids.map((id) => rows.find((r) => r?.id === id && ctx.viewer && canSeeTenant(ctx.viewer, r.tenantId)) ?? null);
  },
  fields: (t) => ({
    occurredAt: t.expose('whenUtc', { type: 'DateTime', description: 'When it happened.' }),
    category: t.field({ type: AuditCategoryEnum, description: 'What part of the fleet it is about.', resolve: (e) => e.category as AuditCategory }),
    action: t.exposeString('action', { description: 'What happened, e.g. "tenant.provisioned", "quota.updated".' }),
    service: t.exposeString('service', { description: 'The service that recorded it ("tenantry").' }),
    actor: t.exposeString('actor', { description: 'Who did it: "<key name> (apikey:<key id>)"; "system" for the control plane\'s own work; "npm run admin-key (<user>@<host>)".' }),
    subject: t.exposeString('subject', { nullable: true, description: 'The object acted on (a role, a key, an extension…); null when the action names it.' }),
    correlationId: t.exposeString('correlationId', { nullable: true, description: 'The request\'s correlation id (X-Correlation-ID), to find its log lines; null for work of no request.' }),
    metadata: t.expose('metadata', { type: 'JSON', nullable: true, description: 'Details of the action (e.g. old and new values); never secrets.' }),
    tenantSlug: t.exposeString('tenantSlug', { nullable: true, description: 'The tenant\'s slug when it happened (kept after deprovisioning); null for an event about no tenant.' }),
  }),
});

const AuditEventFilter = builder.inputType('AuditEventFilter', {
  description: 'Which audit events to list; the conditions given must all hold.',
  fields: (t) => ({
    tenantSlug: t.string({ required: false, description: 'Only events about this tenant.' }),
    action: t.string({ required: false, description: 'Exact action, e.g. "tenant.provisioned".' }),
    category: t.field({ type: AuditCategoryEnum, required: false, description: 'Only events of this category.' }),
    actor: t.string({ required: false, description: 'Exact actor, as AuditEvent.actor gives it (e.g. "ci (apikey:<key id>)").' }),
    occurredAfter: t.field({ type: 'DateTime', required: false, description: 'Events at or after this instant.' }),
    occurredBefore: t.field({ type: 'DateTime', required: false, description: 'Events before this instant.' }),
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
    args: { filter: t.arg({ type: AuditEventFilter, description: 'Which events (default: all the caller may see).' }) },
    resolve: async (_, args, ctx) => {
      const audit = ctx.services.get(AuditLog);
      const page = await resolveCursorConnection({ args, toCursor: (e: AuditEvent) => e.id, ...pageOptions(args, ctx.config) }, (cursors: ResolveCursorConnectionArgs) =>
        audit.listAuditEvents(ctx.viewer!, { ...auditPage(cursors), filter: args.filter }),
      );
      return withTotalCount(page, () => audit.countAuditEvents(ctx.viewer!, args.filter));
    },
  }, AuditEventConnectionRef),
);
