import type { ApiKey } from '../api-keys.js';
import { ApiKeys } from '../api-key-service.js';
import { builder } from '../../../graphql/builder.js';
import { localIdOf } from '../../../graphql/ids.js';
import { ApiKeyRef } from './ApiKey.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const RevokeApiKeyInput = builder.inputType('RevokeApiKeyInput', {
  description: 'Which key to revoke.',
  fields: (t) => ({ id: t.id({ required: true, description: 'The ApiKey\'s global id.' }) }),
});

const RevokeApiKeyPayload = builder.objectRef<Payload<{ apiKey: ApiKey }>>('RevokeApiKeyPayload').implement({
  description: 'The result of revokeApiKey.',
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyRef, nullable: true, description: 'The key, now with revokedAt; null when the mutation was refused.', resolve: (p) => p.apiKey ?? null }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('revokeApiKey', (t) =>
  t.field({
    type: RevokeApiKeyPayload,
    description: 'Admins revoke any key; a TENANT_ADMIN the keys of its own tenant. Revokes a key at once; requests with it fail authentication from then on.',
    authScopes: { admin: true, tenantAdmin: true },
    args: { input: t.arg({ type: RevokeApiKeyInput, required: true, description: 'The key\'s global id.' }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors('revokeApiKey', input, async () => ({ apiKey: await ctx.services.get(ApiKeys).revokeApiKey(ctx.op, ctx.viewer!, localIdOf(input.id.toString(), 'ApiKey')) })),
  }),
);
