import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { createYoga } from 'graphql-yoga';
import type { Config } from './config.js';
import { createControlClient } from './db/control-client.js';
import { prepareControlDatabase } from './db/control-database.js';
import { ClusterRegistry } from './domain/clusters/cluster-registry.js';
import type { Deps, Hooks } from './domain/deps.js';
import { bootstrapAdminKey } from './domain/keys/api-keys.js';
import { TemplateCatalog } from './domain/templates/template-catalog.js';
import { TemplateDatabases } from './domain/templates/template-databases.js';
import { createContext, type GraphQLContext } from './graphql/context.js';
import { useErrorCorrelation } from './graphql/error-correlation.js';
import { schema } from './graphql/schema.js';
import { checkReadiness } from './http/health.js';
import type { Logger } from './logger.js';

export interface Tenantry {
  /** Base URL, e.g. http://127.0.0.1:4000 */
  url: string;
  deps: Deps;
  /** Set only on the very first start without ADMIN_API_KEY: to be shown once. */
  generatedAdminKey: string | null;
  close(): Promise<void>;
}

const GRAPHIQL_QUERY = `# Send your API key: Headers tab → {"Authorization": "Bearer tnry_…"}
query Fleet {
  viewer { keyName role }
  tenants(first: 20) {
    edges { node { slug status databaseName quota { maxConnections } schemaVersion { version compatibility } } }
  }
}
`;

/**
 * Brings up the service on `serverUrl` (the PostgreSQL server holding the control
 * database, which is also the default managed cluster) and serves it over HTTP.
 */
export async function startTenantry(options: { config: Config; serverUrl: string; logger: Logger; hooks?: Hooks }): Promise<Tenantry> {
  const { config, logger } = options;
  const control = await prepareControlDatabase(options.serverUrl, config.CONTROL_DATABASE);
  for (const m of control.applied) logger.info({ migration: m.name }, 'control database migrated');

  const { db, counter: controlQueries } = createControlClient(control.url);
  const controlPool = new pg.Pool({ connectionString: control.url, max: 10, application_name: 'tenantry-locks' });
  controlPool.on('error', (err) => logger.warn({ err }, 'control database connection lost'));
  const catalog = await TemplateCatalog.load(config.TEMPLATES_DIR);
  const clusters = new ClusterRegistry(db, options.serverUrl);
  const deps: Deps = {
    config,
    logger,
    db,
    controlQueries,
    controlPool,
    clusters,
    catalog,
    templateDatabases: new TemplateDatabases(catalog, config.CONTROL_DATABASE, logger),
    hooks: options.hooks ?? {},
  };
  await clusters.ensureDefault();
  const { generatedKey } = await bootstrapAdminKey(db, config.ADMIN_API_KEY);

  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    context: ({ request }) => createContext(deps, request),
    plugins: [useErrorCorrelation(logger)],
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error(args.map(String).join(' ')),
    },
    graphiql: { title: 'Tenantry', defaultQuery: GRAPHIQL_QUERY, headers: JSON.stringify({ Authorization: 'Bearer <your key>' }) },
    landingPage: false,
  });

  const server: Server = createServer(async (req, res) => {
    if (req.url === '/health/live') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (req.url === '/health/ready') {
      const report = await checkReadiness(deps);
      res.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(report));
      return;
    }
    return yoga(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    deps,
    generatedAdminKey: generatedKey,
    close: () =>
      (closing ??= (async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await db.$disconnect();
        await controlPool.end();
        await clusters.close();
      })()),
  };
}
