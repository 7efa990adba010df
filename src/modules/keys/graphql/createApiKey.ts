import type { ApiKey } from '../api-keys.js';
import { ApiKeys } from '../api-key-service.js';
import { builder } from '../../../graphql/builder.js';
import { ApiKeyRef, ApiKeyRoleEnum } from './ApiKey.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    role: t.field({ type: ApiKeyRoleEnum, required: true }),
    tenantSlug: t.string({ required: false, description: 'Required for TENANT_ADMIN and TENANT_READER keys.' }),
    expiresAt: t.field({ type: 'DateTime', required: false }),
  }),
});

const CreateApiKeyPayload = builder.objectRef<Payload<{ apiKey: ApiKey; key: string }>>('CreateApiKeyPayload').implement({
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyRef, nullable: true, resolve: (p) => p.apiKey ?? null }),
    key: t.string({
      nullable: true,
      description: 'The key ("tnry_" and 64 hex characters). Shown once: only its hash is stored.',
      resolve: (p) => p.key ?? null,
    }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('createApiKey', (t) =>
  t.field({
    type: CreateApiKeyPayload,
    description: 'Admins create any key; a TENANT_ADMIN creates keys for its own tenant.',
    authScopes: { admin: true, tenantAdmin: true },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: (_, { input }, ctx) => withUserErrors(input, () => ctx.services.get(ApiKeys).createApiKey(ctx.op, ctx.viewer!, input)),
  }),
);
