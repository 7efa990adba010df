import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { ApiKeyRole, type ApiKey } from '../api-keys.js';
import { ApiKeys } from '../api-key-service.js';
import { builder } from '../../../graphql/builder.js';
import { decodeCursor, encodeCursor } from '../../../graphql/connection-cursor.js';
import { isUuid } from '../../../graphql/ids.js';
import { pageOptions } from '../../../graphql/pagination.js';
import { countedConnection, withTotalCount } from '../../../graphql/total-count.js';

export const ApiKeyRoleEnum = builder.enumType('ApiKeyRole', {
  description: 'What an API key may do.',
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
    name: t.exposeString('name', { description: 'What the key is for, as its creator named it.' }),
    role: t.field({ type: ApiKeyRoleEnum, description: 'What the key may do.', resolve: (k) => k.role }),
    keyPrefix: t.exposeString('keyPrefix', { description: 'The first characters of the key, to recognise it.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was created.' }),
    createdBy: t.exposeString('createdBy', { description: 'Who created it: "<key name> (apikey:<id>)"; "system" for the key made at first start; "npm run admin-key (<user>@<host>)".' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true, description: 'When it stops working; null: never.' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true, description: 'When it was revoked; null while it is not.' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true, description: 'When a request last authenticated with it (written at most once a minute); null: never used.' }),
  }),
});

const ApiKeyFilter = builder.inputType('ApiKeyFilter', {
  description: 'Which keys to list.',
  fields: (t) => ({
    tenantSlug: t.string({ required: false, description: 'Only keys of this tenant (ADMIN keys belong to none).' }),
    includeRevoked: t.boolean({ required: false, defaultValue: false, description: 'Revoked keys too (default: only keys not revoked; expired keys are listed).' }),
  }),
});

const ApiKeyConnectionRef = countedConnection(ApiKeyRef, 'ApiKey', 'API keys');

builder.queryField('apiKeys', (t) =>
  t.connection(
    {
      type: ApiKeyRef,
      description:
        'API keys, newest first: an ADMIN key sees every key; a TENANT_ADMIN key the keys it created itself; a TENANT_READER key is refused ' +
        '(FORBIDDEN). Never the key text or its hash.',
      authScopes: { admin: true, tenantAdmin: true },
      args: { filter: t.arg({ type: ApiKeyFilter, description: 'By tenant; revoked keys only when asked for.' }) },
      resolve: async (_, args, ctx) => {
        const keys = ctx.services.get(ApiKeys);
        const page = await resolveCursorConnection(
          { args, toCursor: (k: ApiKey) => encodeCursor([k.createdAt.toISOString(), k.id]), ...pageOptions(args, ctx.config) },
          ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
            keys.listKeys(ctx.viewer!, args.filter, {
              after: decodeCursor<[string, string]>(after, 2),
              before: decodeCursor<[string, string]>(before, 2),
              limit,
              inverted,
            }),
        );
        return withTotalCount(page, () => keys.countKeys(ctx.viewer!, args.filter));
      },
    },
    ApiKeyConnectionRef,
  ),
);
