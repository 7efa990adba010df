// A PgBouncer of a benchmark's own: not supervised, in a temporary folder (removed on stop),
// started with `pools`, with its driver and admin console (for timing RELOAD and SHOW apart).
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/platform/logger.js';
import type { PoolSpec } from '../../src/modules/pools/pooler-driver.js';
import { AdminConsole } from '../../src/modules/pools/pgbouncer/admin-console.js';
import { localAddress } from '../../src/modules/pools/pgbouncer/pgbouncer-config.js';
import { PgBouncerDriver } from '../../src/modules/pools/pgbouncer/pgbouncer-driver.js';
import { findPgBouncer, PgBouncerProcess } from '../../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { generatePassword } from '../../src/modules/tenants/credentials.js';
import { AUTH_QUERY } from '../../src/modules/pools/pooler-auth.sql.js';
import { freePort } from '../../test/support/free-port.js';

export interface BarePgBouncer {
  binary: string;
  proc: PgBouncerProcess;
  driver: PgBouncerDriver;
  adminConsole: AdminConsole;
  stop(): Promise<void>;
}

/** A pool spec of a benchmark fleet: `t<i>_tenant`. */
export const benchPool = (i: number, size: { poolSize: number; maxDbConnections: number }): PoolSpec => ({
  name: `t${i}_tenant`,
  database: `t${i}_tenant`,
  user: `t${i}_tenant`,
  ...size,
  mode: 'transaction',
});

export async function startBarePgBouncer(pools: readonly PoolSpec[]): Promise<BarePgBouncer> {
  const binary = findPgBouncer();
  if (!binary) throw new Error('pgbouncer is not installed');
  const logger = createLogger('error');
  const tmp = await mkdtemp(path.join(tmpdir(), 'tenantry-bench-pgbouncer-'));
  await chmod(tmp, 0o711); // PgBouncer runs as postgres when we are root: it must reach its folder
  const authUser = 'tenantry_bench_auth';
  const proc = new PgBouncerProcess({
    dir: path.join(tmp, 'pgbouncer'),
    listenPort: await freePort(),
    serverHost: '127.0.0.1',
    serverPort: 5432,
    binary,
    authUser,
    authQuery: AUTH_QUERY,
    serverIdleTimeout: 30,
    supervise: false,
    logger,
  });
  const driver = new PgBouncerDriver({
    settings: proc.settings,
    admin: proc.admin,
    authUser: { user: authUser, password: generatePassword() },
    clientSlots: { perConnection: 5, fileLimit: 1_000_000 },
    fileOwner: proc.fileOwner,
    logger,
  });
  const adminConsole = new AdminConsole({ ...localAddress(proc.settings), user: proc.admin.user, password: proc.admin.password });
  const stop = async () => {
    await proc.stop();
    await rm(tmp, { recursive: true, force: true });
  };
  try {
    await proc.claim();
    await driver.writeFiles(pools);
    await proc.start();
  } catch (err) {
    await stop();
    throw err;
  }
  return { binary, proc, driver, adminConsole, stop };
}
