import type { Viewer } from '../../../platform/viewer.js';
import { builder } from '../../../graphql/builder.js';
import { ApiKeyRoleEnum } from './ApiKey.js';
import { TenantRef } from '../../tenants/graphql/Tenant.js';

const ViewerRef = builder.objectRef<Viewer>('Viewer').implement({
  description: 'The caller: the API key this request presented.',
  fields: (t) => ({
    keyName: t.exposeString('name'),
    keyPrefix: t.exposeString('keyPrefix'),
    role: t.field({ type: ApiKeyRoleEnum, resolve: (v) => v.role }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    tenant: t.field({
      type: TenantRef,
      nullable: true,
      description: 'The one tenant a TENANT_* key belongs to; null for ADMIN keys.',
      resolve: (v, _, ctx) => (v.tenantId ? ctx.deps.db.tenant.findUnique({ where: { id: v.tenantId } }) : null),
    }),
  }),
});

builder.queryField('viewer', (t) => t.field({ type: ViewerRef, resolve: (_, __, ctx) => ctx.viewer! }));
