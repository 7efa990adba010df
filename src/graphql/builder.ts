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
    edgesFieldOptions: { complexity: { field: 0, multiplier: 1 }, description: 'The rows of this page, in order.' },
    nodeFieldOptions: { description: 'The row.' },
    cursorFieldOptions: { description: 'Opaque; pass it as after (or before) to page on from this row.' },
    pageInfoFieldOptions: { description: 'Where this page sits: whether there are more rows, and the cursors to fetch them.' },
    pageInfoTypeOptions: { description: 'Whether more rows lie before or after a page, and the cursors of its first and last rows.' },
    hasNextPageFieldOptions: { description: 'Whether rows follow this page (fetch them with after: endCursor).' },
    hasPreviousPageFieldOptions: { description: 'Whether rows precede this page (fetch them with before: startCursor and last).' },
    startCursorFieldOptions: { description: "The first row's cursor; null when the page is empty." },
    endCursorFieldOptions: { description: "The last row's cursor; null when the page is empty." },
    firstArgOptions: { description: 'Return the first this many rows (after the after cursor); 0 to GRAPHQL_MAX_PAGE_SIZE, default 20.' },
    lastArgOptions: { description: 'Return the last this many rows (before the before cursor); 0 to GRAPHQL_MAX_PAGE_SIZE.' },
    afterArgOptions: { description: "Start after this row: a cursor from an edge or from pageInfo.endCursor." },
    beforeArgOptions: { description: "End before this row: a cursor from an edge or from pageInfo.startCursor." },
    nodeQueryOptions: {
      description: 'The object with this global id, or null when there is none or the key may not see it (a tenant key sees its own).',
      args: { id: { description: 'A global id, as an object\'s id field gives it.' } },
    },
    nodeTypeOptions: { description: 'An object with a global id, unique across types: Query.node(id) refetches it.' },
    idFieldOptions: { description: 'Global id, unique across types (opaque; pass it back as it is).' },
  },
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);

// Every root field needs a valid key unless it says otherwise.
builder.queryType({ description: 'Reads. Every field needs a valid API key; each says what a tenant key sees.', authScopes: { authenticated: true } });
builder.mutationType({
  description: 'Changes. Each needs a valid API key of the role it names; expected failures come back in the payload\'s userErrors.',
  authScopes: { authenticated: true },
});
builder.subscriptionType({
  description: 'Live streams over graphql-ws or SSE. Each needs a valid API key, and ends when the key is revoked or expires.',
  authScopes: { authenticated: true },
});
