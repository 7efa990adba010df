import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Deps } from '../domain/deps.js';
import { createRequestContext, type GraphQLContext } from './context.js';
import { useErrorCorrelation } from './error-correlation.js';
import { schema } from './schema.js';

export type TenantryYoga = YogaServerInstance<Record<string, unknown>, GraphQLContext>;

const GRAPHIQL_QUERY = `# Send your API key: Headers tab → {"Authorization": "Bearer tnry_…"}
query Fleet {
  viewer { keyName role }
  tenants(first: 20) {
    edges { node { slug status databaseName quota { maxConnections } schemaVersion { version compatibility } } }
  }
}
`;

/** GraphQL over HTTP and SSE on /graphql, with GraphiQL for browsers: the schema, its context and its plugins. */
export function createTenantryYoga(deps: Deps, plugins: Plugin[] = []): TenantryYoga {
  const { logger } = deps;
  return createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    context: ({ request }) => createRequestContext(deps, request),
    plugins: [useErrorCorrelation(logger), ...plugins],
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error(args.map(String).join(' ')),
    },
    graphiql: { title: 'Tenantry', defaultQuery: GRAPHIQL_QUERY, headers: JSON.stringify({ Authorization: 'Bearer <your key>' }) },
    landingPage: false,
  });
}
