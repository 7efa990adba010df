import type { ApiKey } from '../api-keys.js';
import { ApiKeys } from '../api-key-service.js';
import { builder } from '../../../graphql/builder.js';
import { ApiKeyRef, ApiKeyRoleEnum } from './ApiKey.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  description: 'The key to create.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'What the key is for (shown in lists and audit events).' }),
    role: t.field({ type: ApiKeyRoleEnum, required: true, description: 'What it may do; a TENANT_ADMIN may not create ADMIN keys.' }),
    tenantSlug: t.string({ required: false, description: 'Required for TENANT_ADMIN and TENANT_READER keys.' }),
    expiresAt: t.field({ type: 'DateTime', required: false, description: 'When it stops working (in the future); null: never.' }),
  }),
});

const CreateApiKeyPayload = builder.objectRef<Payload<{ apiKey: ApiKey; key: string }>>('CreateApiKeyPayload').implement({
  description: 'The result of createApiKey: the key, shown once.',
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyRef, nullable: true, description: 'The new key\'s record; null when the mutation was refused.', resolve: (p) => p.apiKey ?? null }),
    key: t.string({
      nullable: true,
      description: 'The key ("tnry_" and 64 hex characters). Shown once: only its hash is stored.',
      resolve: (p) => p.key ?? null,
    }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('createApiKey', (t) =>
  t.field({
    type: CreateApiKeyPayload,
    description: 'Admins create any key; a TENANT_ADMIN creates keys for its own tenant.',
    authScopes: { admin: true, tenantAdmin: true },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true, description: 'Name, role, tenant and expiry of the key.' }) },
    resolve: (_, { input }, ctx) => withUserErrors('createApiKey', input, () => ctx.services.get(ApiKeys).createApiKey(ctx.op, ctx.viewer!, input)),
  }),
);
