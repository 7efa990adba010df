// The pooler's minimum for one pool change at a fleet size, on a bare PgBouncer of its own
// loaded with that many pools. PgBouncer 1.18 re-reads its whole file on RELOAD and has no
// command to change one database, so no pool change through one PgBouncer can cost less than
// writing the file and sending RELOAD. `npm run bench` measures it in the same run as
// updateTenantQuota and provisionTenant, two ways, in alternate rounds:
// - minimum: the file written as Tenantry writes it (renamed into place, not synced: see
//   writeIni) and RELOAD on an admin connection kept open, as Tenantry keeps one;
// - fresh: the file synced and RELOAD on a new admin connection (a SCRAM login each time), the
//   floor as earlier stops measured it.
import { performance } from 'node:perf_hooks';
import { AdminConsole } from '../../src/modules/pools/pgbouncer/admin-console.js';
import { writeIni } from '../../src/modules/pools/pgbouncer/config-files.js';
import { localAddress, renderPgBouncerIni } from '../../src/modules/pools/pgbouncer/pgbouncer-config.js';
import { benchPool, startBarePgBouncer } from './bare-pgbouncer.js';

export interface PoolerFloor {
  /** Latencies (ms) of write (not synced) + RELOAD on a held admin connection. */
  minimum: number[];
  /** Latencies (ms) of write (synced) + RELOAD on a new admin connection. */
  fresh: number[];
}

/** `rounds` of each way, each writing an ini of `size` pools plus one (as a change adds). */
export async function poolerFloor(size: number, rounds: number): Promise<PoolerFloor> {
  const pool = (i: number) => benchPool(i, { poolSize: 2, maxDbConnections: 2 });
  const base = Array.from({ length: size }, (_, i) => pool(i));
  const { proc, adminConsole, stop } = await startBarePgBouncer(base);
  const held = new AdminConsole({ ...localAddress(proc.settings), user: proc.admin.user, password: proc.admin.password, hold: true });
  const floor: PoolerFloor = { minimum: [], fresh: [] };
  try {
    await held.ping(); // the held connection is opened once, before the rounds
    for (let round = 0; round < 2 * rounds; round++) {
      const ini = renderPgBouncerIni(proc.settings, [...base, pool(size + round)], 1_000_000);
      const minimum = round % 2 === 0;
      const started = performance.now();
      await writeIni(proc.settings.files, ini, proc.fileOwner, !minimum);
      await (minimum ? held : adminConsole).reload();
      (minimum ? floor.minimum : floor.fresh).push(performance.now() - started);
    }
  } finally {
    await held.close();
    await stop();
  }
  return floor;
}
