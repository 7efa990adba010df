// The pooler's minimum for one pool change at a fleet size: write pgbouncer.ini (temp file,
// fsync, rename) and RELOAD, on a bare PgBouncer of its own loaded with that many pools.
// PgBouncer 1.18 re-reads its whole file on RELOAD and has no command to change one database,
// so no pool change through one PgBouncer can cost less. `npm run bench` measures it in the
// same run as updateTenantQuota and provisionTenant.
import { performance } from 'node:perf_hooks';
import { writeIni } from '../../src/modules/pools/pgbouncer/config-files.js';
import { renderPgBouncerIni } from '../../src/modules/pools/pgbouncer/pgbouncer-config.js';
import { benchPool, startBarePgBouncer } from './bare-pgbouncer.js';

/** Latencies (ms) of `rounds` write + RELOAD of an ini with `size` pools (plus one, as a change adds). */
export async function poolerFloor(size: number, rounds: number): Promise<number[]> {
  const pool = (i: number) => benchPool(i, { poolSize: 2, maxDbConnections: 2 });
  const base = Array.from({ length: size }, (_, i) => pool(i));
  const { proc, adminConsole, stop } = await startBarePgBouncer(base);
  const latencies: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const ini = renderPgBouncerIni(proc.settings, [...base, pool(size + round)], 1_000_000);
      const started = performance.now();
      await writeIni(proc.settings.files, ini, proc.fileOwner);
      await adminConsole.reload();
      latencies.push(performance.now() - started);
    }
  } finally {
    await stop();
  }
  return latencies;
}
