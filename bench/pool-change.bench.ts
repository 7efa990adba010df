// What one pool change costs Tenantry's PoolSync with a real PgBouncer, at fleets of 100 and
// 10,000 tenants, measured in one run: the apply after one tenant's change (the part of
// updateTenantQuota and provisionTenant that waits for the pooler) against the pooler's minimum
// (write pgbouncer.ini + RELOAD on a bare PgBouncer with as many pools) and the bare SQL of a quota
// change (ALTER ROLE ... CONNECTION LIMIT). The fleet is control-database rows (PgBouncer opens
// no server connection until a client comes), so 10,000 tenants cost seconds to make, not the
// hour the API takes on this machine (bench/fleet.bench.ts measures the whole mutations).
// Each size is measured with one PgBouncer and with the pools split over several
// (POOLER_SHARDS, BENCH_SHARDS=1,16): a change then rewrites and reloads one PgBouncer's share.
// Beside it, a raise's capacity read: the cluster's allocation counter against the sum of every
// quota it replaced (both must agree, or the bench fails).
// Usage: npm run bench:pool-change   (BENCH_SIZES=100,10000 BENCH_SHARDS=1,16 BENCH_ROUNDS=20;
// BENCH_DATABASE_URL: a superuser URL of a server to use instead of the embedded PostgreSQL 18)
import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import format from 'pg-format';
import { loadConfig } from '../src/platform/config.js';
import { createControlClient } from '../src/platform/db/control-client.js';
import { prepareControlDatabase } from '../src/platform/db/control-database.js';
import { startEmbeddedServer } from '../src/platform/embedded/embedded-server.js';
import { createLogger } from '../src/platform/logger.js';
import { ClusterRegistry } from '../src/modules/clusters/index.js';
import { CapacityPlanner } from '../src/modules/quotas/cluster-capacity.js';
import { startPooler } from '../src/modules/pools/index.js';
import { freePort, freePorts } from '../test/support/free-port.js';
import { dropEverythingOf } from '../test/support/test-tenantry.js';
import { poolerFloor } from './support/pooler-floor.js';
import { p50, p95 } from './support/statistics.js';

const SIZES = (process.env.BENCH_SIZES ?? '100,10000').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const SHARDS = (process.env.BENCH_SHARDS ?? '1,16').split(',').map(Number);
const logger = createLogger('warn');
const log = (message: string) => process.stdout.write(`# ${new Date().toISOString().slice(11, 19)} ${message}\n`);
const limits = { statementTimeoutMs: 600_000, lockTimeoutMs: 60_000, connectTimeoutMs: 10_000 };

const tmp = await mkdtemp(path.join(tmpdir(), 'tenantry-bench-poolchange-'));
await chmod(tmp, 0o711);
let url = process.env.BENCH_DATABASE_URL;
let stopEmbedded = async () => {};
if (!url) {
  const server = await startEmbeddedServer({ home: path.join(tmp, 'pg'), port: await freePort(), logger });
  url = server.url;
  stopEmbedded = server.stop;
}
const tag = randomBytes(4).toString('hex');
const names = { controlDatabase: `tenantry_pc${tag}`, prefix: `pc${tag}_` };
const admin = new pg.Pool({ connectionString: url, max: 2 });
admin.on('error', () => undefined); // an idle client ended by the clean-up's DROP ... WITH (FORCE) or the server's stop
const serverVersion = (await admin.query<{ v: string }>(`SELECT pg_catalog.current_setting('server_version') AS v`)).rows[0]!.v;

interface Figures {
  size: number;
  shards: number;
  quotaApply: number[];
  addApply: number[];
  fullApply: number[];
  alterRole: number[];
  floor: number[];
  tenantsRead: number;
  /** Of each quota apply: the time in the driver's apply (render, write, RELOAD, check, last good copy). */
  driverShare: number[];
  /** PgBouncers reloaded per quota apply. */
  reloaded: number;
  /** A raise's capacity read: the cluster's allocation (its counter row), and the sum it replaced. */
  allocationRead: number[];
  allocationSum: number[];
}
const figures: Figures[] = [];

/** The table, printed before the clean-up (a failing clean-up must not lose the figures). */
function report(): void {
  const ms = (v: number) => (v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`);
  const rows: [string, (f: Figures) => string][] = [
    ['pool apply after one quota change, p50 (request([tenant]))', (f) => ms(p50(f.quotaApply))],
    ['pool apply after one quota change, p95', (f) => ms(p95(f.quotaApply))],
    ['pool apply after one quota change, throughput (per s, one at a time)', (f) => (1000 / (f.quotaApply.reduce((a, b) => a + b, 0) / f.quotaApply.length)).toFixed(1)],
    ['PgBouncers reloaded per quota apply', (f) => String(f.reloaded)],
    ['of which in the driver\'s apply (split, render, write, RELOAD, log check, last good copy), p50', (f) => ms(p50(f.driverShare))],
    ['of which control-database reads and writes (the rest), p50', (f) => ms(p50(f.quotaApply.map((t, i) => t - f.driverShare[i]!)))],
    ['tenant rows read per apply after a change', (f) => String(f.tenantsRead)],
    ['pool apply after one new tenant, p50', (f) => ms(p50(f.addApply))],
    ['pool apply after one new tenant, p95', (f) => ms(p95(f.addApply))],
    ['full apply (every tenant read, SHOW DATABASES compared: the path before), p50', (f) => ms(p50(f.fullApply))],
    ['pooler minimum: write pgbouncer.ini + RELOAD, bare PgBouncer with one share of the pools, p50', (f) => ms(p50(f.floor))],
    ['pooler minimum, p95', (f) => ms(p95(f.floor))],
    ['bare ALTER ROLE ... CONNECTION LIMIT, p50', (f) => ms(p50(f.alterRole))],
    ['quota apply p50 / pooler minimum p50', (f) => `${(p50(f.quotaApply) / p50(f.floor)).toFixed(2)}x`],
    ['(ALTER ROLE + quota apply) p50 / (2 x ALTER ROLE + pooler minimum) p50', (f) => `${((p50(f.alterRole) + p50(f.quotaApply)) / (2 * p50(f.alterRole) + p50(f.floor))).toFixed(2)}x`],
    ['a raise\'s capacity read: the cluster\'s allocation (one counter row), p50', (f) => ms(p50(f.allocationRead))],
    ['the same by summing every quota on the cluster (the path before), p50', (f) => ms(p50(f.allocationSum))],
  ];
  console.log(`\n| ${ROUNDS} rounds | ${figures.map((f) => `${f.size.toLocaleString('en')} tenants, ${f.shards} PgBouncer${f.shards === 1 ? '' : 's'}`).join(' | ')} |`);
  console.log(`|---|${figures.map(() => '---').join('|')}|`);
  for (const [label, show] of rows) console.log(`| ${label} | ${figures.map(show).join(' | ')} |`);
  console.log(`\nPostgreSQL ${serverVersion}; machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`);
}
try {
  const control = await prepareControlDatabase(url, names.controlDatabase);
  const { db } = createControlClient(control.url, limits);
  const registry = new ClusterRegistry(db, url, limits);
  const cluster = await registry.ensureDefault();
  const capacityConfig = { OVERCOMMIT_FACTOR: 1, QUOTA_MIN: 10, DEFAULT_MAX_CONNECTIONS: 50 };
  /** A pooler with `shards` PgBouncers, its apply timed (inDriver: the time in the driver's apply). */
  const startBenchPooler = async (shards: number) => {
    const config = loadConfig({
      DATABASE_URL: url,
      CONTROL_DATABASE: names.controlDatabase,
      TENANT_DB_PREFIX: names.prefix,
      POOLER: 'pgbouncer',
      POOLER_PORT: String(await freePorts(shards)),
      POOLER_SHARDS: String(shards),
      POOLER_DIR: path.join(tmp, `pgbouncer-${shards}`),
      POOLER_MAX_CLIENT_CONN: '2000',
    });
    const pooler = await startPooler({ config, cluster, clusters: registry, db, logger });
    const driver = pooler.driver!;
    const apply = driver.apply.bind(driver);
    driver.apply = async (...args) => {
      const t0 = performance.now();
      try {
        return await apply(...args);
      } finally {
        inDriver += performance.now() - t0;
      }
    };
    return pooler;
  };
  let inDriver = 0;
  // Real roles for the bare ALTER ROLE (tenant rows below have none: PgBouncer needs none to load a pool).
  const roles = Array.from({ length: 8 }, (_, i) => `${names.prefix}role_${i}`);
  for (const r of roles) await admin.query(format('CREATE ROLE %I LOGIN CONNECTION LIMIT 2', r));

  const tenantIds: string[] = [];
  const addTenants = async (count: number) => {
    for (let done = 0; done < count; done += 1000) {
      const rows = Array.from({ length: Math.min(1000, count - done) }, () => ({ id: randomUUID(), i: tenantIds.length }));
      for (const r of rows) r.i = tenantIds.push(r.id) - 1;
      await db.tenant.createMany({
        data: rows.map(({ id, i }) => ({
          id,
          slug: `pc-${i}`,
          displayName: `pc ${i}`,
          status: 'ACTIVE' as const,
          databaseName: `${names.prefix}t${String(i).padStart(5, '0')}`,
          roleName: `${names.prefix}t${String(i).padStart(5, '0')}`,
          clusterId: cluster.id,
          templateName: 'default',
          templateVersion: '1.1.0',
        })),
      });
      await db.quota.createMany({ data: rows.map(({ id }) => ({ tenantId: id, maxConnections: 2, updatedBy: 'bench' })) });
    }
  };
  const timed = async (work: () => Promise<unknown>) => {
    const t0 = performance.now();
    await work();
    return performance.now() - t0;
  };
  const must = async (p: Promise<{ outcome: string; error: string | null }>) => {
    const r = await p;
    if (r.outcome !== 'IN_SYNC') throw new Error(`apply: ${r.outcome} ${r.error}`);
  };

  for (const size of SIZES) {
    log(`fleet of ${size} tenants (rows)`);
    await addTenants(size - tenantIds.length);
    const alterRole: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      alterRole.push(await timed(() => admin.query(format('ALTER ROLE %I CONNECTION LIMIT %s', roles[round % roles.length]!, 2 + (round % 2)))));
    }
    // A raise checks the cluster's capacity: what its tenants are promised, less the raised one's.
    const capacity = new CapacityPlanner({ db, config: capacityConfig });
    const allocationRead: number[] = [];
    const allocationSum: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const id = tenantIds[(round * 7919) % size]!;
      let counted = 0;
      let summed: number | null = 0;
      allocationRead.push(await timed(async () => (counted = (await capacity.allocationExcept(cluster.id, id)).allocatedConnections)));
      allocationSum.push(
        await timed(async () => {
          const { _sum } = await db.quota.aggregate({ _sum: { maxConnections: true }, where: { tenant: { clusterId: cluster.id, status: { not: 'DEPROVISIONED' }, id: { not: id } } } });
          summed = _sum.maxConnections;
        }),
      );
      if (counted !== (summed ?? 0)) throw new Error(`the counter says ${counted} connections are allocated, the sum ${summed}`);
    }
    for (const shards of SHARDS) {
      log(`${shards} PgBouncer${shards === 1 ? '' : 's'}: start`);
      const pooler = await startBenchPooler(shards);
      const pools = pooler.pools;
      await must(pools.request());
      await pools.reconcile(); // every row read once; from here on an apply reads what changed
      const f: Figures = { size, shards, quotaApply: [], addApply: [], fullApply: [], alterRole, floor: [], tenantsRead: 0, driverShare: [], reloaded: 0, allocationRead, allocationSum };
      const readBefore = pools.stats.tenantsRead;
      let reloaded = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const id = tenantIds[(round * 7919) % size]!;
        await db.quota.update({ where: { tenantId: id }, data: { maxConnections: 2 + ((round % 2) + 1) } });
        inDriver = 0;
        f.quotaApply.push(await timed(() => must(pools.request([id]))));
        f.driverShare.push(inDriver);
        reloaded += pooler.driver!.lastReloaded.length;
      }
      f.reloaded = reloaded / ROUNDS;
      f.tenantsRead = (pools.stats.tenantsRead - readBefore) / ROUNDS;
      log('new tenants');
      for (let round = 0; round < ROUNDS; round++) {
        await addTenants(1);
        f.addApply.push(await timed(() => must(pools.request([tenantIds.at(-1)!]))));
      }
      log('full applies (every tenant read, SHOW DATABASES compared on every PgBouncer)');
      for (let round = 0; round < Math.min(ROUNDS, 10); round++) {
        const id = tenantIds[(round * 104729) % size]!;
        await db.quota.update({ where: { tenantId: id }, data: { maxConnections: 2 + ((round % 2) + 1) } });
        f.fullApply.push(await timed(() => must(pools.request())));
      }
      await pooler.stop();
      log('the pooler minimum for one PgBouncer\'s share');
      f.floor = (await poolerFloor(Math.ceil(tenantIds.length / shards), Math.min(ROUNDS, 10))).minimum;
      figures.push(f);
    }
  }
  report();
  await registry.close();
  await db.$disconnect();
} finally {
  await dropEverythingOf(admin, names).catch((err) => console.error('cleaning up failed:', err));
  await admin.end();
  await stopEmbedded();
  await rm(tmp, { recursive: true, force: true });
}

process.exit(0);
