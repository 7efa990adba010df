import type { Viewer } from '../../../platform/viewer.js';
import { builder } from '../../../graphql/builder.js';
import { ApiKeyRoleEnum } from './ApiKey.js';

// Viewer.tenant is the tenants module's (tenants/graphql/tenantFieldsOnOthers.ts).
export const ViewerRef = builder.objectRef<Viewer>('Viewer').implement({
  description: 'The caller: the API key this request presented.',
  fields: (t) => ({
    keyName: t.exposeString('name'),
    keyPrefix: t.exposeString('keyPrefix'),
    role: t.field({ type: ApiKeyRoleEnum, resolve: (v) => v.role }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.queryField('viewer', (t) => t.field({ type: ViewerRef, resolve: (_, __, ctx) => ctx.viewer! }));
