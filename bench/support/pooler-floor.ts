// The pooler's minimum for one pool change at a fleet size: write pgbouncer.ini (temp file,
// fsync, rename) and RELOAD, on a bare PgBouncer of its own loaded with that many pools.
// PgBouncer 1.18 re-reads its whole file on RELOAD and has no command to change one database,
// so no pool change through one PgBouncer can cost less. `npm run bench` measures it in the
// same run as updateTenantQuota and provisionTenant.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLogger } from '../../src/platform/logger.js';
import type { PoolSpec } from '../../src/modules/pools/pooler-driver.js';
import { AdminConsole } from '../../src/modules/pools/pgbouncer/admin-console.js';
import { writeIni } from '../../src/modules/pools/pgbouncer/config-files.js';
import { localAddress, renderPgBouncerIni } from '../../src/modules/pools/pgbouncer/pgbouncer-config.js';
import { PgBouncerDriver } from '../../src/modules/pools/pgbouncer/pgbouncer-driver.js';
import { findPgBouncer, PgBouncerProcess } from '../../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { generatePassword } from '../../src/modules/tenants/credentials.js';
import { AUTH_QUERY } from '../../src/modules/pools/pooler-auth.sql.js';
import { freePort } from '../../test/support/free-port.js';

/** Latencies (ms) of `rounds` write + RELOAD of an ini with `size` pools (plus one, as a change adds). */
export async function poolerFloor(size: number, rounds: number): Promise<number[]> {
  const binary = findPgBouncer();
  if (!binary) throw new Error('pgbouncer is not installed');
  const logger = createLogger('error');
  const tmp = await mkdtemp(path.join(tmpdir(), 'tenantry-bench-poolerfloor-'));
  await chmod(tmp, 0o711);
  const proc = new PgBouncerProcess({
    dir: path.join(tmp, 'pgbouncer'),
    listenPort: await freePort(),
    serverHost: '127.0.0.1',
    serverPort: 5432,
    binary,
    authUser: 'tenantry_bench_floor_auth',
    authQuery: AUTH_QUERY,
    serverIdleTimeout: 30,
    supervise: false,
    logger,
  });
  const driver = new PgBouncerDriver({
    settings: proc.settings,
    admin: proc.admin,
    authUser: { user: 'tenantry_bench_floor_auth', password: generatePassword() },
    clientSlots: { perConnection: 5, fileLimit: 1_000_000 },
    fileOwner: proc.fileOwner,
    logger,
  });
  const console_ = new AdminConsole({ ...localAddress(proc.settings), user: proc.admin.user, password: proc.admin.password });
  const pool = (i: number): PoolSpec => ({ name: `t${i}_tenant`, database: `t${i}_tenant`, user: `t${i}_tenant`, poolSize: 2, maxDbConnections: 2, mode: 'transaction' });
  const base = Array.from({ length: size }, (_, i) => pool(i));
  const latencies: number[] = [];
  try {
    await proc.claim();
    await driver.writeFiles(base);
    await proc.start();
    for (let round = 0; round < rounds; round++) {
      const ini = renderPgBouncerIni(proc.settings, [...base, pool(size + round)], 1_000_000);
      const started = performance.now();
      await writeIni(proc.settings.files, ini, proc.fileOwner);
      await console_.reload();
      latencies.push(performance.now() - started);
    }
  } finally {
    await proc.stop();
    await rm(tmp, { recursive: true, force: true });
  }
  return latencies;
}
