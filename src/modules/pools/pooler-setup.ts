import { access, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../../platform/config.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { Failpoints } from '../../platform/failpoints.js';
import { AUTH_QUERY } from './pooler-auth.sql.js';
import { openFileLimit } from './pgbouncer/client-slots.js';
import { PgBouncerDriver } from './pgbouncer/pgbouncer-driver.js';
import { PgBouncerShards } from './pgbouncer/pgbouncer-shards.js';
import { pgBouncerFiles } from './pgbouncer/pgbouncer-config.js';
import { findPgBouncer, PgBouncerProcess, type PoolerStatus } from './pgbouncer/pgbouncer-process.js';
import { PoolerAuth, poolerPassword } from './pgbouncer/pooler-auth.js';
import { PoolSync, type PoolerHealth, type PoolSyncOptions } from './pool-sync.js';

export interface Pooler {
  kind: 'pgbouncer' | 'none';
  driver: PgBouncerShards | null;
  pools: PoolSync;
  /** Why this pooler (for the start-up banner and logs). */
  description: string;
  /** The first PgBouncer (the only one with POOLER_SHARDS=1). */
  process: PgBouncerProcess | null;
  /** Every PgBouncer, by shard. */
  processes: PgBouncerProcess[];
  /** For readiness: `up`, `starting`, `down` (restarting), `stopped`, or `none`. */
  status(): PoolerHealth;
  stop(): Promise<void>;
}

/** Without `events` and `locks` (tests that run a pooler alone) the pools follow request() only. */
interface StartPoolerOptions extends Pick<PoolSyncOptions, 'db' | 'logger' | 'events' | 'locks' | 'clusters'> {
  config: Config;
  /**
   * The default cluster: prepared before PgBouncer starts, and where pools point without
   * `clusters` (with it, each tenant's pool points at its own cluster).
   */
  cluster: ClusterAdmin;
  registry?: Registry;
  /** Named points tests may step in at: `pooler.before-restart`, before each restart of a PgBouncer that exited. */
  failpoints?: Failpoints;
}

/**
 * POOLER=pgbouncer (the default when the binary exists) starts a PgBouncer that Tenantry
 * owns, in POOLER_DIR, in front of the default cluster, and supervises it. POOLER=none
 * runs without one: quotas are then enforced by PostgreSQL alone and
 * pooledConnectionString is null.
 *
 * Order: folder lock, roles and auth user on the default cluster (every other registered
 * cluster is prepared in the background after), the full configuration written, then
 * PgBouncer started (so it starts with every pool), then one apply to verify it.
 */
export async function startPooler(options: StartPoolerOptions): Promise<Pooler> {
  const { config, cluster, db, logger, events, locks, clusters } = options;
  const binary = findPgBouncer();
  const kind = config.POOLER ?? (binary ? 'pgbouncer' : 'none');
  if (kind === 'none') {
    const description = config.POOLER === 'none' ? 'POOLER=none: no pooler' : 'POOLER=none: pgbouncer was not found on PATH, so no pooler runs (install PgBouncer to get pooled connections)';
    const pools = new PoolSync({ db, driver: null, mode: config.POOL_MODE, logger, events, locks, clusters });
    return { kind, driver: null, pools, description, process: null, processes: [], status: () => pools.status(), stop: () => pools.close() };
  }
  if (!binary) throw new Error('POOLER=pgbouncer, but pgbouncer was not found on PATH or in /usr/sbin (Debian: apt-get install pgbouncer)');

  const roles = { lookupRole: config.POOLER_LOOKUP_ROLE, authUser: config.POOLER_AUTH_USER ?? `${config.CONTROL_DATABASE}_pooler` };
  const dir = path.resolve(config.POOLER_DIR ?? path.join(config.TENANTRY_HOME, 'pgbouncer'));
  const shardCount = config.POOLER_SHARDS;
  const recordShardCount = await checkShardCount(dir, shardCount);
  // One PgBouncer: its files in `dir`. Several: one folder each, shard-<n> in `dir`.
  const processes = Array.from(
    { length: shardCount },
    (_, i) =>
      new PgBouncerProcess({
        dir: shardCount === 1 ? dir : path.join(dir, `shard-${i}`),
        binary,
        listenHost: config.POOLER_HOST,
        listenPort: config.POOLER_PORT + i,
        serverHost: cluster.host,
        serverPort: cluster.port,
        authUser: roles.authUser,
        authQuery: AUTH_QUERY,
        serverIdleTimeout: config.POOLER_SERVER_IDLE_TIMEOUT,
        defaultPoolMode: config.POOL_MODE,
        // The default folder lives in TENANTRY_HOME, Tenantry's own: it may be opened to
        // PgBouncer's user; so may the folder that holds the shards' folders.
        ownFolders: [...(config.POOLER_DIR ? [] : [config.TENANTRY_HOME]), ...(shardCount > 1 ? [dir] : [])],
        failpoints: options.failpoints,
        logger: shardCount === 1 ? logger : logger.child({ pgbouncer: i }),
      }),
  );
  const stopAll = () => Promise.all(processes.map((p) => p.stop()));
  let auth: PoolerAuth;
  try {
    // Each fails, touching nothing, if another live Tenantry owns its folder.
    for (const p of processes) await p.claim();
    await recordShardCount?.();
    auth = await PoolerAuth.prepare(cluster, roles, await poolerPassword(db, roles.authUser), logger);
  } catch (err) {
    await stopAll();
    throw err;
  }
  const fileLimit = openFileLimit();
  const drivers = processes.map(
    (p) =>
      new PgBouncerDriver({
        settings: p.settings,
        admin: p.admin,
        authUser: { user: roles.authUser, password: auth.password },
        // The file-descriptor limit is Tenantry's, and each PgBouncer inherits it whole.
        clientSlots: { perConnection: config.POOLER_CLIENTS_PER_CONNECTION, fixed: config.POOLER_MAX_CLIENT_CONN, fileLimit },
        fileOwner: p.fileOwner,
        logger,
      }),
  );
  const driver = new PgBouncerShards(drivers, (i) => processes[i]!.status());
  const status = () => worstStatus(processes.map((p) => p.status()));
  const pools = new PoolSync({ db, driver, mode: config.POOL_MODE, logger, status, auth: { auth, cluster }, events, locks, clusters });

  // Down: pools turn ERROR; back: the configuration is re-applied and they return to IN_SYNC.
  const metrics = options.registry ? poolerMetrics(options.registry) : null;
  metrics?.configWritable.set(1);
  pools.on('configWrite', (state) => metrics?.configWritable.set(state.error ? 0 : 1));
  pools.on('configWriteFailed', (code) => metrics?.configWriteFailures.inc({ code }));
  const upNow = () => metrics?.up.set(processes.every((p) => p.status().state === 'up') ? 1 : 0);
  for (const p of processes) {
    let restarts = 0;
    p.on('down', () => {
      upNow();
      void pools.request();
    });
    p.on('up', (s: PoolerStatus) => {
      upNow();
      if (s.restarts === restarts) return; // the first start: verified below
      metrics?.restarts.inc(s.restarts - restarts);
      restarts = s.restarts;
      void pools.request();
    });
  }

  try {
    await pools.writeInitial();
    await Promise.all(processes.map((p) => p.start()));
  } catch (err) {
    await stopAll();
    throw err;
  }
  logger.info({ dir, ports: poolerPortsText(config), pids: processes.map((p) => p.pid) }, shardCount === 1 ? 'PgBouncer started' : `${shardCount} PgBouncers started`);
  await pools.request(); // verifies what PgBouncer loaded and records it
  // Every other registered cluster, in the background: one that does not answer must not hold
  // up the start (its tenants' pools need nothing from it to be written).
  void pools.prepareClusters();
  const where = shardCount === 1 ? `PgBouncer on ${config.POOLER_HOST}:${config.POOLER_PORT}` : `${shardCount} PgBouncers on ${config.POOLER_HOST}:${poolerPortsText(config)}`;
  return {
    kind,
    driver,
    pools,
    description: `${where} (${config.POOL_MODE} pooling, files in ${dir})`,
    process: processes[0]!,
    processes,
    status: () => pools.status(),
    stop: async () => {
      await pools.close();
      await driver.close();
      await stopAll();
    },
  };
}

function poolerPortsText(config: Config): string {
  return config.POOLER_SHARDS === 1 ? String(config.POOLER_PORT) : `${config.POOLER_PORT}-${config.POOLER_PORT + config.POOLER_SHARDS - 1}`;
}

/** Up only when every PgBouncer is; else the state of the first that is not (readiness says which). */
function worstStatus(all: PoolerStatus[]): PoolerStatus {
  const notUp = all.find((s) => s.state !== 'up');
  if (!notUp) return { ...all[0]!, restarts: all.reduce((n, s) => n + s.restarts, 0) };
  const index = all.indexOf(notUp);
  return all.length === 1 ? notUp : { ...notUp, lastExit: notUp.lastExit && `PgBouncer ${index} of ${all.length}: ${notUp.lastExit}` };
}

/**
 * A tenant's PgBouncer follows from POOLER_SHARDS: a different count moves most tenants to
 * another port, breaking the pooled connection strings they were given. The count is recorded
 * in the pooler's folder at the first start and a different one refuses to start. Throws on a
 * different count, touching nothing; else returns what records the count (null: recorded
 * already), to call once the folder exists.
 */
export async function checkShardCount(dir: string, count: number): Promise<(() => Promise<void>) | null> {
  const file = path.join(dir, 'tenantry.shards');
  const exists = (f: string) =>
    access(f).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false;
        throw err;
      },
    );
  // A folder from before the count was recorded, with a PgBouncer's files in it, ran one.
  const written = await exists(file);
  const recorded = written ? Number((await readFile(file, 'utf8')).trim()) : (await exists(pgBouncerFiles(dir).ini)) ? 1 : null;
  if (recorded === count && written) return null;
  if (recorded !== null && recorded !== count) {
    throw new Error(
      `POOLER_SHARDS is ${count}, but this pooler (${dir}) was started with ${recorded}: a tenant's PgBouncer, and so the port of its ` +
        `pooled connection string, follows from that number. Start with POOLER_SHARDS=${recorded}, or, to re-shard (every tenant's ` +
        `pooled port may change: hand out new connection strings), stop Tenantry, empty ${dir} (Tenantry writes its files again at ` +
        `start) and start with the new number.`,
    );
  }
  // Written once the folder exists (the PgBouncers' folders are made with the right owners first).
  return () => writeFile(file, `${count}\n`);
}

function poolerMetrics(registry: Registry) {
  return {
    restarts: new Counter({ name: 'tenantry_pooler_restarts_total', help: 'Times Tenantry restarted the PgBouncer it runs after it exited on its own', registers: [registry] }),
    up: new Gauge({ name: 'tenantry_pooler_up', help: '1 while every PgBouncer Tenantry runs is serving (POOLER_SHARDS of them), 0 while one is down', registers: [registry] }),
    configWritable: new Gauge({
      name: 'tenantry_pooler_config_writable',
      help: '1 while Tenantry can write PgBouncer\'s configuration, 0 after a write failed (pools PgBouncer does not run are ERROR)',
      registers: [registry],
    }),
    configWriteFailures: new Counter({
      name: 'tenantry_pooler_config_write_failures_total',
      help: 'Applies whose PgBouncer configuration could not be written, by errno code (EPERM, EACCES, EROFS, ENOSPC...)',
      labelNames: ['code'],
      registers: [registry],
    }),
  };
}
