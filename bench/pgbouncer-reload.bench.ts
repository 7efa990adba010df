// What one pool change costs PgBouncer as the fleet grows: Tenantry's PgBouncerDriver.apply
// (render pgbouncer.ini (changed lines only), write it, RELOAD, check: SHOW DATABASES in full,
// or PgBouncer's log after a change) with one pool added or resized
// to fleets of 100 to 10,000 pools, and each part on its own. PgBouncer has one configuration
// file and no command to add a single database, so this is the floor under every change that
// touches a pool (provisionTenant, updateTenantQuota, suspend/resume) while callers wait for it.
// No PostgreSQL is needed: PgBouncer does not connect to servers to load its configuration.
// Usage: npm run bench:pooler   (BENCH_SIZES=100,1000,3000,10000  BENCH_ROUNDS=7)
import { execFile } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { writeIni } from '../src/modules/pools/pgbouncer/config-files.js';
import { renderPgBouncerIni } from '../src/modules/pools/pgbouncer/pgbouncer-config.js';
import { benchPool, startBarePgBouncer } from './support/bare-pgbouncer.js';
import { p50 } from './support/statistics.js';

const SIZES = (process.env.BENCH_SIZES ?? '100,1000,3000,10000').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const { binary, proc, driver, adminConsole, stop } = await startBarePgBouncer([]);

const pool = (i: number) => benchPool(i, { poolSize: 10, maxDbConnections: 50 });
const fleet = (n: number) => Array.from({ length: n }, (_, i) => pool(i));

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** The parts of one pool change, each timed on its own, with their labels in the table. */
const PARTS = {
  apply: 'PgBouncerDriver.apply, one pool added, checked by SHOW DATABASES (start, reconciler) (p50)',
  applyLog: 'PgBouncerDriver.apply, one pool added, checked by PgBouncer\'s log (after a change) (p50)',
  applyQuota: 'PgBouncerDriver.apply, one pool resized, checked by the log (a quota change) (p50)',
  render: 'render and validate pgbouncer.ini from scratch',
  write: 'write it (temp file, fsync, rename)',
  reload: 'RELOAD (PgBouncer reads the whole file)',
  show: 'SHOW DATABASES (the check after)',
} as const;
type Part = keyof typeof PARTS;
type Row = { size: number } & Record<Part, number>;

const rows: Row[] = [];
try {
  for (const size of SIZES) {
    const base = fleet(size);
    await driver.apply(base);
    const parts: Record<Part, number[]> = { apply: [], applyLog: [], applyQuota: [], render: [], write: [], reload: [], show: [] };
    for (let round = 0; round < ROUNDS; round++) {
      // One new tenant's pool, as a provisioning adds it.
      const next = [...base, pool(size + round)];
      parts.apply.push(await timed(() => driver.apply(next)));
      const added = [...next, pool(size + ROUNDS + round)];
      parts.applyLog.push(await timed(() => driver.apply(added, { verify: 'log' })));
      const resized = added.map((p, i) => (i === 0 ? { ...p, poolSize: 10 + ((round % 2) + 1) } : p));
      parts.applyQuota.push(await timed(() => driver.apply(resized, { verify: 'log' })));
      let ini = '';
      parts.render.push(await timed(async () => (ini = renderPgBouncerIni(proc.settings, next, 1_000_000))));
      parts.write.push(await timed(() => writeIni(proc.settings.files, ini, proc.fileOwner)));
      parts.reload.push(await timed(() => adminConsole.reload()));
      parts.show.push(await timed(() => adminConsole.showDatabases()));
    }
    const row = { size, ...Object.fromEntries(Object.entries(parts).map(([p, times]) => [p, p50(times)])) } as Row;
    rows.push(row);
    console.error(`# ${size} pools: apply ${row.apply.toFixed(1)} ms (RELOAD ${row.reload.toFixed(1)} ms)`);
  }
} finally {
  await stop();
}

const first = rows[0]!;
const ms = (value: number) => `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ms`;
const ratio = (value: number, of: number) => (of > 0 ? ` (${(value / of).toFixed(1)}x)` : '');
console.log(`| one pool change, ${ROUNDS} rounds, medians | ${rows.map((r) => `${r.size.toLocaleString('en')} pools`).join(' | ')} |`);
console.log(`|---|${rows.map(() => '---').join('|')}|`);
for (const [key, label] of Object.entries(PARTS) as [Part, string][]) {
  console.log(`| ${label} | ${rows.map((r) => ms(r[key]) + (r === first ? '' : ratio(r[key], first[key]))).join(' | ')} |`);
}
console.log(`\nPgBouncer ${await versionOf(binary)}; machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. Ratios are to the ${first.size}-pool column of this run.`);

function versionOf(bin: string): Promise<string> {
  return new Promise((resolve) => execFile(bin, ['--version'], (_err, out) => resolve(String(out).split('\n')[0]!.replace(/^PgBouncer\s*/i, '').trim())));
}
