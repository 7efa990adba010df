import type { Viewer } from '../../../platform/viewer.js';
import { builder } from '../../../graphql/builder.js';
import { ApiKeyRoleEnum } from './ApiKey.js';

// Viewer.tenant is the tenants module's (tenants/graphql/tenantFieldsOnOthers.ts).
export const ViewerRef = builder.objectRef<Viewer>('Viewer').implement({
  description: 'The caller: the API key this request presented.',
  fields: (t) => ({
    keyName: t.exposeString('name', { description: 'The key\'s name.' }),
    keyPrefix: t.exposeString('keyPrefix', { description: 'The first characters of the key, to recognise it.' }),
    role: t.field({ type: ApiKeyRoleEnum, description: 'What the key may do.', resolve: (v) => v.role }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true, description: 'When the key stops working; null: never.' }),
  }),
});

builder.queryField('viewer', (t) => t.field({ type: ViewerRef, description: 'The API key this request presented (any valid key).', resolve: (_, __, ctx) => ctx.viewer! }));
