import type { IncomingMessage } from 'node:http';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { corsOptionsFor } from '../platform/http/origin-policy.js';
import { createRequestContext, type ApiSetup, type GraphQLContext } from './context.js';
import { graphiqlOptions, renderOfflineGraphiQL } from './graphiql.js';
import { useErrorCorrelation } from './error-correlation.js';
import { useCloseAfterTooLarge, useCsrfPreventionWithCode, useRequestBodyLimit, useServedTransports } from './http-refusals.js';
import { useQueryLimits } from './query-limits.js';
import { schema } from './schema.js';

export type TenantryYoga = YogaServerInstance<{ req?: IncomingMessage }, GraphQLContext>;

/**
 * GraphQL over HTTP and SSE on /graphql, with GraphiQL for browsers: the schema, its
 * context and its plugins. What production changes (GraphiQL, introspection, field
 * suggestions, CSRF prevention, the origins CORS allows) comes from the configuration; see
 * docs/configuration.md, "Production settings".
 */
export function createTenantryYoga(api: ApiSetup, extraPlugins: Plugin[] = []): TenantryYoga {
  const { logger, config } = api;
  const log = (level: 'debug' | 'info' | 'warn' | 'error') => (...args: unknown[]) => logger[level](args.map(String).join(' '));
  const plugins: Plugin[] = [...useQueryLimits(config), useErrorCorrelation(logger) as Plugin, ...extraPlugins, useServedTransports(), useCloseAfterTooLarge()];
  // Browsers may send "simple" requests (GET, form posts) cross-site without a preflight:
  // those must carry a header no form can set.
  if (config.CSRF_PREVENTION) plugins.push(useCsrfPreventionWithCode());
  // Last, where yoga would put its own body limit (turned off below).
  plugins.push(useRequestBodyLimit(config.MAX_REQUEST_BYTES));
  return createYoga<{ req?: IncomingMessage }, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    context: ({ request, req }) => createRequestContext(api, request, req),
    plugins,
    cors: corsOptionsFor(config.CORS_ORIGINS),
    // MAX_REQUEST_BYTES is applied by useRequestBodyLimit (http-refusals.ts), yoga's checks without
    // its copy of every body: by Content-Length before reading, and while reading a body that has
    // none: 413 REQUEST_ENTITY_TOO_LARGE.
    maxRequestBodySize: false,
    // Never a stack trace or an original error in a response, whatever NODE_ENV says: unexpected
    // errors are logged with the request's correlation id (error-correlation.ts) and masked.
    maskedErrors: { isDev: false },
    logging: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    graphiql: config.GRAPHIQL ? graphiqlOptions : false,
    renderGraphiQL: renderOfflineGraphiQL,
    landingPage: false,
  });
}
