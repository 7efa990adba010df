// One Tenantry in a process of its own, for tests that need a real second replica (one
// they can SIGSTOP) or a server to SIGKILL at a chosen moment. Configuration comes as JSON in
// REPLICA_ENV; once it serves, it prints `REPLICA { "url": …, "replica": … }` (among its log
// lines); SIGTERM closes it. With REPLICA_PAUSE_AT set to a point - `before:<STEP>` or
// `after:<STEP>` of provisioning, or a checkpoint name such as `quota.recorded` - the process
// prints `PAUSED <point>` when it gets there and waits, for the test to kill it.
import type { Hooks } from '../../src/domain/deps.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startTenantry } from '../../src/server.js';

const config = loadConfig(JSON.parse(process.env.REPLICA_ENV ?? '{}') as Record<string, string>);
const pauseAt = process.env.REPLICA_PAUSE_AT;
const pause = async (point: string) => {
  if (point !== pauseAt) return;
  process.stdout.write(`PAUSED ${point}\n`);
  await new Promise(() => undefined);
};
const hooks: Hooks = {
  beforeProvisionStep: (step) => pause(`before:${step}`),
  afterProvisionStep: (step) => pause(`after:${step}`),
  checkpoint: (name) => pause(name),
};
const app = await startTenantry({ config, serverUrl: config.DATABASE_URL!, logger: createLogger(config.LOG_LEVEL), hooks });
process.stdout.write(`REPLICA ${JSON.stringify({ url: app.url, replica: app.deps.usage.replica })}\n`);
process.on('SIGTERM', () => {
  void app.close().finally(() => process.exit(0));
});
