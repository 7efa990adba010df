import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { GraphQLError } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { GraphQLContext } from './context.js';
import { pageSizeOf } from './pagination.js';

const AUTH_MESSAGES = {
  MISSING: 'Authentication required: send an API key as "Authorization: Bearer <key>"',
  MALFORMED: 'The Authorization header must be "Bearer <key>"',
  PLACEHOLDER:
    'Put your API key in the Headers tab: replace <paste your admin key> with the admin key printed once at first start ' +
    '(lost it? `npm run admin-key` makes a new one)',
  UNKNOWN: 'The API key is not valid',
  REVOKED: 'The API key has been revoked',
  EXPIRED: 'The API key has expired',
} as const;

/** The builder only configures plugins; types live in nodes/, mutations/. */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  AuthScopes: {
    /** Any valid key. */
    authenticated: boolean;
    /** An ADMIN key: every tenant, every operation. */
    admin: boolean;
    /** A TENANT_ADMIN key: manages its own tenant. */
    tenantAdmin: boolean;
  };
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
  };
}>({
  defaultFieldNullability: false,
  plugins: [ScopeAuthPlugin, RelayPlugin, DataloaderPlugin, ComplexityPlugin],
  // Costs only: the limits are applied per request, before execution, by query-limits.ts.
  complexity: { defaultComplexity: 1, defaultListMultiplier: 10 },
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      authenticated: ctx.viewer !== null,
      admin: ctx.viewer?.role === 'ADMIN',
      tenantAdmin: ctx.viewer?.role === 'TENANT_ADMIN',
    }),
    unauthorizedError: (_parent, ctx) =>
      ctx.viewer
        ? new GraphQLError('This API key is not allowed to do that', { extensions: { code: 'FORBIDDEN' } })
        : new GraphQLError(AUTH_MESSAGES[ctx.authFailure ?? 'MISSING'], { extensions: { code: 'UNAUTHENTICATED' } }),
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodesQueryOptions: false,
    // A connection costs its page size times what each edge selects (edges themselves add nothing).
    defaultConnectionFieldOptions: { complexity: (args, ctx) => ({ field: 1, multiplier: pageSizeOf(args, ctx.config) }) },
    edgesFieldOptions: { complexity: { field: 0, multiplier: 1 } },
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);

// Every root field needs a valid key unless it says otherwise.
builder.queryType({ authScopes: { authenticated: true } });
builder.mutationType({ authScopes: { authenticated: true } });
builder.subscriptionType({ authScopes: { authenticated: true } });
