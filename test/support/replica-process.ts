// One Tenantry in a process of its own, for tests that need a real second replica (one
// they can SIGSTOP) or a server to SIGKILL at a chosen moment. Configuration comes as JSON in
// REPLICA_ENV; once it serves, it prints `REPLICA { "url": …, "replica": … }` (among its log
// lines); SIGTERM closes it. With REPLICA_PAUSE_AT set to a point - `before:<STEP>` or
// `after:<STEP>` of provisioning, or a checkpoint name such as `quota.recorded` - the process
// prints `PAUSED <point>` when it gets there and waits, for the test to kill it (see also
// REPLICA_AUTH_DELAY_MS below). Spawned with
// an IPC channel, it answers `{ type: 'live-state' }` with what it holds for live clients and
// its heap after a full garbage collection (started with --expose-gc).
import { loadConfig } from '../../src/platform/config.js';
import { Failpoints } from '../../src/platform/failpoints.js';
import { createLogger } from '../../src/platform/logger.js';
import { startTenantry } from '../../src/server.js';

const config = loadConfig(JSON.parse(process.env.REPLICA_ENV ?? '{}') as Record<string, string>);
const pauseAt = process.env.REPLICA_PAUSE_AT;
const pause = async (point: string) => {
  if (point !== pauseAt) return;
  process.stdout.write(`PAUSED ${point}\n`);
  await new Promise(() => undefined);
};
// REPLICA_AUTH_DELAY_MS: every authentication takes this long (a client can leave during it).
const authDelayMs = Number(process.env.REPLICA_AUTH_DELAY_MS ?? 0);
// Points are named as in src/platform/failpoints.ts, except provisioning's: `before:<STEP>` stands for `provision.before:<STEP>`.
const failpoints = new Failpoints();
if (authDelayMs) failpoints.set('auth.before', () => new Promise((r) => setTimeout(r, authDelayMs)));
if (pauseAt) failpoints.set(pauseAt.replace(/^(before|after):/, 'provision.$1:'), () => pause(pauseAt));
const app = await startTenantry({ config, serverUrl: config.DATABASE_URL!, logger: createLogger(config.LOG_LEVEL), failpoints });
process.stdout.write(`REPLICA ${JSON.stringify({ url: app.url, replica: app.parts.usage.replica })}\n`);
process.on('message', (message: { type?: string }) => {
  if (message?.type !== 'live-state') return;
  const gc = (globalThis as { gc?: () => void }).gc;
  // Twice: what the first collection frees can let a second free more (weak maps, finalizers).
  gc?.();
  gc?.();
  process.send!({
    type: 'live-state',
    heapUsed: gc ? process.memoryUsage().heapUsed : null,
    live: app.liveCounts(),
    usage: app.parts.usage.subscriberCounts(),
    busListeners: app.parts.events.listenerCount,
  });
});
process.on('SIGTERM', () => {
  void app.close().finally(() => process.exit(0));
});
