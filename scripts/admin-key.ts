// `npm run admin-key [-- --name "<name>"]`: a new ADMIN key, for a key that was lost or
// never seen. It goes straight to the control database, found as `npm start` finds it:
// DATABASE_URL and CONTROL_DATABASE, or, without DATABASE_URL, the embedded server whose
// port and password TENANTRY_HOME/embedded.json holds. When that server is not running
// (Tenantry is stopped), it is started for the moment and stopped again.
// The key is printed once; only its hash is stored, and the minting is audited.
import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ConfigError, loadConfig } from '../src/platform/config.js';
import { redactUrl, withDatabase } from '../src/platform/db/connection-url.js';
import { createControlClient } from '../src/platform/db/control-client.js';
import { embeddedServerUrl, embeddedStateFile, startEmbeddedServer, type EmbeddedServer } from '../src/platform/embedded/embedded-server.js';
import { mintAdminKey } from '../src/modules/keys/index.js';
import { createLogger } from '../src/platform/logger.js';

class Refusal extends Error {}

/** Whether anything answers on the server's port (a refused connection means it is not running). */
async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: 'tenantry-admin-key' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') return false;
    throw new Refusal(`cannot log in to ${redactUrl(url)}: ${(err as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { name: { type: 'string' } } });
  const config = loadConfig();
  // Logs (the embedded server's, if started) go to stderr; stdout holds only the key's banner.
  const logger = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL, process.stderr);

  let embedded: EmbeddedServer | undefined;
  let serverUrl = config.DATABASE_URL;
  if (!serverUrl) {
    serverUrl = (await embeddedServerUrl(config.TENANTRY_HOME)) ?? undefined;
    if (!serverUrl) {
      throw new Refusal(
        `no embedded PostgreSQL under TENANTRY_HOME=${config.TENANTRY_HOME} (${embeddedStateFile(config.TENANTRY_HOME)} is missing): ` +
          'run `npm start` once first, or set DATABASE_URL (and CONTROL_DATABASE) to the server Tenantry uses',
      );
    }
    if (!(await reachable(serverUrl))) {
      process.stderr.write(`admin-key: Tenantry's embedded PostgreSQL (${config.TENANTRY_HOME}) is not running; starting it for this command\n`);
      embedded = await startEmbeddedServer({ home: config.TENANTRY_HOME, port: config.EMBEDDED_PG_PORT, logger });
      serverUrl = embedded.url;
    }
  }
  try {
    const server = new pg.Client({ connectionString: serverUrl, application_name: 'tenantry-admin-key' });
    server.on('error', () => undefined);
    await server.connect().catch((err: Error) => {
      throw new Refusal(`cannot reach ${redactUrl(serverUrl!)}: ${err.message}`);
    });
    try {
      const { rowCount } = await server.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [config.CONTROL_DATABASE]);
      if (!rowCount) {
        throw new Refusal(
          `no control database "${config.CONTROL_DATABASE}" on ${redactUrl(serverUrl)}: start Tenantry once (\`npm start\`), or set CONTROL_DATABASE to the one it uses`,
        );
      }
    } finally {
      await server.end();
    }

    const { db } = createControlClient(withDatabase(serverUrl, config.CONTROL_DATABASE), { statementTimeoutMs: config.STATEMENT_TIMEOUT_MS, lockTimeoutMs: config.LOCK_TIMEOUT_MS, connectTimeoutMs: config.POOL_ACQUIRE_TIMEOUT_MS });
    try {
      const actor = `npm run admin-key (${userInfo().username}@${hostname()})`;
      const name = values.name?.trim() || `admin-key ${new Date().toISOString()}`;
      const { key } = await mintAdminKey(db, { actor, correlationId: randomUUID() }, name).catch((err: Error) => {
        throw new Refusal(`could not store the key in "${config.CONTROL_DATABASE}" (has Tenantry ever started against it?): ${err.message.split('\n').at(-1)}`);
      });
      process.stdout.write(
        [
          '',
          `  New admin API key "${name}" (shown once, only its hash is stored):`,
          '',
          `      ${key}`,
          '',
          '  Send it as the header  Authorization: Bearer <key>  (in GraphiQL: the Headers tab).',
          '  A key that may have leaked: revokeApiKey(id) with this one.',
          '',
        ].join('\n') + '\n',
      );
    } finally {
      await db.$disconnect();
    }
  } finally {
    await embedded?.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`admin-key: ${err instanceof Refusal ? err.message : (err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
