import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { AuditLog, type AuditEvent } from '../../audit/index.js';
import { AuditEventConnectionRef, AuditEventRef, auditPage } from '../../audit/graphql/index.js';
import { ApiKeyRef, ViewerRef } from '../../keys/graphql/index.js';
import { TenantStore } from '../tenant-store.js';
import { builder } from '../../../graphql/builder.js';
import { pageOptions } from '../../../graphql/pagination.js';
import { withTotalCount } from '../../../graphql/total-count.js';
import { TenantRef } from './Tenant.js';

// The tenant of a lower module's object (an audit event, an API key, the caller's key) and a tenant's
// audit trail: the audit and keys modules sit below tenants, so the tenants module adds these fields.

for (const ref of [AuditEventRef, ApiKeyRef]) {
  builder.objectField(ref, 'tenant', (t) =>
    t.loadable({
      type: TenantRef,
      nullable: true,
      description:
        ref === ApiKeyRef
          ? 'The tenant a TENANT_* key belongs to; null for an ADMIN key.'
          : 'The tenant the event is about; null for an event about no single tenant (keys, fleet operations, pools).',
      load: (ids: string[], ctx) => ctx.services.get(TenantStore).byIds(ids),
      resolve: (row) => row.tenantId,
    }),
  );
}

builder.objectField(ViewerRef, 'tenant', (t) =>
  t.field({
    type: TenantRef,
    nullable: true,
    description: 'The one tenant a TENANT_* key belongs to; null for ADMIN keys.',
    resolve: (v, _, ctx) => (v.tenantId ? ctx.services.get(TenantStore).byId(v.tenantId) : null),
  }),
);

builder.objectField(TenantRef, 'auditEvents', (t) =>
  t.connection({
    type: AuditEventRef,
    description: 'This tenant\'s audit trail, newest first (for a page of tenants, one query for all of them, and one more for all their totalCounts).',
    resolve: async (tenant, args, ctx) => {
      const audit = ctx.services.get(AuditLog);
      const connection = await resolveCursorConnection(
        { args, toCursor: (e: AuditEvent) => e.id, ...pageOptions(args, ctx.config) },
        (cursors: ResolveCursorConnectionArgs) => {
          // The tenant is visible (it was resolved for this caller), so is its whole trail.
          const page = auditPage(cursors);
          return ctx
            .loader<string, AuditEvent[]>('tenant-audit-events', page, (ids) => audit.auditEventsByTenantIds(ids, page))
            .load(tenant.id);
        },
      );
      return withTotalCount(connection, () => ctx.loader<string, number>('tenant-audit-counts', null, (ids) => audit.countsByTenantIds(ids)).load(tenant.id));
    },
  }, AuditEventConnectionRef),
);
