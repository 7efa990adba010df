import type { ApiKey } from '../../../generated/prisma/client.js';
import { ApiKeyRole } from '../../../generated/prisma/enums.js';
import { tenantsByIds } from '../../tenants/tenant-queries.js';
import { builder } from '../../../graphql/builder.js';
import { isUuid } from '../../../graphql/ids.js';
import { TenantRef } from '../../tenants/graphql/Tenant.js';

export const ApiKeyRoleEnum = builder.enumType('ApiKeyRole', {
  values: {
    [ApiKeyRole.ADMIN]: { description: 'Everything, on every tenant.' },
    [ApiKeyRole.TENANT_ADMIN]: { description: 'Reads and manages one tenant (and its keys).' },
    [ApiKeyRole.TENANT_READER]: { description: 'Reads one tenant.' },
  },
});

export const ApiKeyRef = builder.objectRef<ApiKey>('ApiKey');

builder.node(ApiKeyRef, {
  description: 'An API key. Only its SHA-256 hash is stored; the key itself is shown once, by createApiKey.',
  id: { resolve: (k) => k.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.deps.db.apiKey.findMany({ where: { id: { in: ids.filter(isUuid) } } });
    return ids.map((id) => {
      const row = rows.find((r) => r.id === id);
      const visible = row && ctx.viewer && (ctx.viewer.role === 'ADMIN' || (ctx.viewer.role === 'TENANT_ADMIN' && row.tenantId === ctx.viewer.tenantId));
      return visible ? row : null;
    });
  },
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.field({ type: ApiKeyRoleEnum, resolve: (k) => k.role }),
    keyPrefix: t.exposeString('keyPrefix', { description: 'The first characters of the key, to recognise it.' }),
    tenant: t.loadable({
      type: TenantRef,
      nullable: true,
      load: (ids: string[], ctx) => tenantsByIds(ctx.deps.db, ids),
      resolve: (k) => k.tenantId,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.exposeString('createdBy'),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
  }),
});
