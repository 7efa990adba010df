import type { IncomingMessage } from 'node:http';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Deps } from '../deps.js';
import { corsOptionsFor } from '../platform/http/origin-policy.js';
import { createRequestContext, type GraphQLContext } from './context.js';
import { graphiqlOptions, renderOfflineGraphiQL } from './graphiql.js';
import { useErrorCorrelation } from './error-correlation.js';
import { useCloseAfterTooLarge, useCsrfPreventionWithCode, useServedTransports } from './http-refusals.js';
import { useQueryLimits } from './query-limits.js';
import { schema } from './schema.js';

export type TenantryYoga = YogaServerInstance<{ req?: IncomingMessage }, GraphQLContext>;

/**
 * GraphQL over HTTP and SSE on /graphql, with GraphiQL for browsers: the schema, its
 * context and its plugins. What production changes (GraphiQL, introspection, field
 * suggestions, CSRF prevention, the origins CORS allows) comes from the configuration; see
 * README, "Production settings".
 */
export function createTenantryYoga(deps: Deps, extraPlugins: Plugin[] = []): TenantryYoga {
  const { logger, config } = deps;
  const plugins: Plugin[] = [...useQueryLimits(config), useErrorCorrelation(logger) as Plugin, ...extraPlugins, useServedTransports(), useCloseAfterTooLarge()];
  // Browsers may send "simple" requests (GET, form posts) cross-site without a preflight:
  // those must carry a header no form can set.
  if (config.CSRF_PREVENTION) plugins.push(useCsrfPreventionWithCode());
  return createYoga<{ req?: IncomingMessage }, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    context: ({ request, req }) => createRequestContext(deps, request, req),
    plugins,
    cors: corsOptionsFor(config.CORS_ORIGINS),
    // Checked by Content-Length before reading, and while reading a body that has none: 413 REQUEST_ENTITY_TOO_LARGE.
    maxRequestBodySize: config.MAX_REQUEST_BYTES,
    // Never a stack trace or an original error in a response, whatever NODE_ENV says: unexpected
    // errors are logged with the request's correlation id (error-correlation.ts) and masked.
    maskedErrors: { isDev: false },
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error(args.map(String).join(' ')),
    },
    graphiql: config.GRAPHIQL ? graphiqlOptions : false,
    renderGraphiQL: renderOfflineGraphiQL,
    landingPage: false,
  });
}
