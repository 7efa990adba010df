import { revokeApiKey } from '../api-keys.js';
import { UserError } from '../../../platform/errors.js';
import type { ApiKey } from '../../../generated/prisma/client.js';
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

function apiKeyId(globalId: string): string {
  const id = localIdOf(globalId, 'ApiKey');
  if (!id) throw new UserError('NOT_FOUND', 'no such API key', 'id');
  return id;
}

builder.mutationField('revokeApiKey', (t) =>
  t.field({
    type: RevokeApiKeyPayload,
    description: 'Revokes a key at once; requests with it fail authentication from then on.',
    authScopes: { admin: true, tenantAdmin: true },
    args: { input: t.arg({ type: RevokeApiKeyInput, required: true }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors(input, async () => ({ apiKey: await revokeApiKey(ctx.deps, ctx.op, ctx.viewer!, apiKeyId(input.id.toString())) })),
  }),
);
