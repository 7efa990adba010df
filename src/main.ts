import { ConfigError, loadConfig } from './config.js';
import { redactUrl } from './db/connection-url.js';
import { startEmbeddedServer, type EmbeddedServer } from './db/embedded-server.js';
import { createLogger } from './logger.js';
import { startTenantry, type Tenantry } from './server.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.LOG_LEVEL);

  let embedded: EmbeddedServer | undefined;
  let app: Tenantry | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await app?.close().catch((err) => logger.error({ err }, 'closing the service failed'));
    await embedded?.stop().catch((err) => logger.error({ err }, 'stopping the embedded PostgreSQL failed'));
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  try {
    let serverUrl = config.DATABASE_URL;
    if (!serverUrl) {
      embedded = await startEmbeddedServer({ home: config.TENANTRY_HOME, port: config.EMBEDDED_PG_PORT, logger });
      serverUrl = embedded.url;
      logger.info({ url: redactUrl(serverUrl), home: config.TENANTRY_HOME }, 'embedded PostgreSQL started');
    }
    app = await startTenantry({ config, serverUrl, logger });
    // The banner goes to the terminal, not the log stream: it may hold the admin key.
    const lines = [
      '',
      `  Tenantry is ready: GraphiQL at ${app.url}/graphql`,
      `  PostgreSQL: ${redactUrl(serverUrl)}${embedded ? ` (embedded, data in ${config.TENANTRY_HOME}/)` : ''}`,
      `  Pooler: ${app.pooler.description}`,
      app.generatedAdminKey
        ? `  Admin API key (shown once, only its hash is stored):\n\n      ${app.generatedAdminKey}\n\n  Send it as the header  Authorization: Bearer <key>`
        : config.ADMIN_API_KEY
          ? '  Admin API key: the one in ADMIN_API_KEY'
          : '  Admin API key: generated on first start (shown then, not stored); create more with createApiKey',
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } catch (err) {
    logger.fatal({ err }, 'Tenantry could not start');
    await app?.close().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    process.exit(1);
  }
}

void main();
