import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Deps } from '../domain/deps.js';
import { createRequestContext, type GraphQLContext } from './context.js';
import { graphiqlOptions, renderOfflineGraphiQL } from './graphiql.js';
import { useErrorCorrelation } from './error-correlation.js';
import { schema } from './schema.js';

export type TenantryYoga = YogaServerInstance<Record<string, unknown>, GraphQLContext>;

/** GraphQL over HTTP and SSE on /graphql, with GraphiQL for browsers: the schema, its context and its plugins. */
export function createTenantryYoga(deps: Deps): TenantryYoga {
  const { logger } = deps;
  return createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    context: ({ request }) => createRequestContext(deps, request),
    plugins: [useErrorCorrelation(logger)],
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error(args.map(String).join(' ')),
    },
    graphiql: graphiqlOptions,
    renderGraphiQL: renderOfflineGraphiQL,
    landingPage: false,
  });
}
