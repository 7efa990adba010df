import type { ApiKey } from '../api-keys.js';
import { ApiKeys } from '../api-key-service.js';
import { builder } from '../../../graphql/builder.js';
import { localIdOf } from '../../../graphql/ids.js';
import { ApiKeyRef } from './ApiKey.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const RevokeApiKeyInput = builder.inputType('RevokeApiKeyInput', {
  fields: (t) => ({ id: t.id({ required: true, description: 'The ApiKey\'s global id.' }) }),
});

const RevokeApiKeyPayload = builder.objectRef<Payload<{ apiKey: ApiKey }>>('RevokeApiKeyPayload').implement({
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyRef, nullable: true, resolve: (p) => p.apiKey ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('revokeApiKey', (t) =>
  t.field({
    type: RevokeApiKeyPayload,
    description: 'Revokes a key at once; requests with it fail authentication from then on.',
    authScopes: { admin: true, tenantAdmin: true },
    args: { input: t.arg({ type: RevokeApiKeyInput, required: true }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors(input, async () => ({ apiKey: await ctx.services.get(ApiKeys).revokeApiKey(ctx.op, ctx.viewer!, localIdOf(input.id.toString(), 'ApiKey')) })),
  }),
);
