// One Tenantry in a process of its own, for tests that need a real second replica (one
// they can SIGSTOP). Configuration comes as JSON in REPLICA_ENV; once it serves, it prints
// `REPLICA { "url": …, "replica": … }` (among its log lines); SIGTERM closes it.
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startTenantry } from '../../src/server.js';

const config = loadConfig(JSON.parse(process.env.REPLICA_ENV ?? '{}') as Record<string, string>);
const app = await startTenantry({ config, serverUrl: config.DATABASE_URL!, logger: createLogger(config.LOG_LEVEL) });
process.stdout.write(`REPLICA ${JSON.stringify({ url: app.url, replica: app.deps.usage.replica })}\n`);
process.on('SIGTERM', () => {
  void app.close().finally(() => process.exit(0));
});
