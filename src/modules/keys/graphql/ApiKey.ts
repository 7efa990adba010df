import { ApiKeyRole, type ApiKey } from '../api-keys.js';
import { ApiKeys } from '../api-key-service.js';
import { builder } from '../../../graphql/builder.js';
import { isUuid } from '../../../graphql/ids.js';

export const ApiKeyRoleEnum = builder.enumType('ApiKeyRole', {
  values: {
    [ApiKeyRole.ADMIN]: { description: 'Everything, on every tenant.' },
    [ApiKeyRole.TENANT_ADMIN]: { description: 'Reads and manages one tenant (and its keys).' },
    [ApiKeyRole.TENANT_READER]: { description: 'Reads one tenant.' },
  },
});

// ApiKey.tenant is the tenants module's (tenants/graphql/tenantFieldsOnOthers.ts).
export const ApiKeyRef = builder.objectRef<ApiKey>('ApiKey');

builder.node(ApiKeyRef, {
  description: 'An API key. Only its SHA-256 hash is stored; the key itself is shown once, by createApiKey.',
  id: { resolve: (k) => k.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.get(ApiKeys).keysByIds(ids.filter(isUuid));
    const v = ctx.viewer;
    return ids.map((id) => rows.find((r) => r?.id === id && v && (v.role === 'ADMIN' || (v.role === 'TENANT_ADMIN' && r.tenantId === v.tenantId))) ?? null);
  },
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.field({ type: ApiKeyRoleEnum, resolve: (k) => k.role }),
    keyPrefix: t.exposeString('keyPrefix', { description: 'The first characters of the key, to recognise it.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.exposeString('createdBy'),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
  }),
});
