import path from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../../platform/config.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { Failpoints } from '../../platform/failpoints.js';
import { AUTH_QUERY } from './pooler-auth.sql.js';
import { openFileLimit } from './pgbouncer/client-slots.js';
import { PgBouncerDriver } from './pgbouncer/pgbouncer-driver.js';
import { findPgBouncer, PgBouncerProcess, type PoolerStatus } from './pgbouncer/pgbouncer-process.js';
import { PoolerAuth, poolerPassword } from './pgbouncer/pooler-auth.js';
import { PoolSync, type PoolerHealth, type PoolSyncOptions } from './pool-sync.js';

export interface Pooler {
  kind: 'pgbouncer' | 'none';
  driver: PgBouncerDriver | null;
  pools: PoolSync;
  /** Why this pooler (for the start-up banner and logs). */
  description: string;
  process: PgBouncerProcess | null;
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
    return { kind, driver: null, pools, description, process: null, status: () => pools.status(), stop: () => pools.close() };
  }
  if (!binary) throw new Error('POOLER=pgbouncer, but pgbouncer was not found on PATH or in /usr/sbin (Debian: apt-get install pgbouncer)');

  const roles = { lookupRole: config.POOLER_LOOKUP_ROLE, authUser: config.POOLER_AUTH_USER ?? `${config.CONTROL_DATABASE}_pooler` };
  const dir = path.resolve(config.POOLER_DIR ?? path.join(config.TENANTRY_HOME, 'pgbouncer'));
  const pgbouncer = new PgBouncerProcess({
    dir,
    binary,
    listenHost: config.POOLER_HOST,
    listenPort: config.POOLER_PORT,
    serverHost: cluster.host,
    serverPort: cluster.port,
    authUser: roles.authUser,
    authQuery: AUTH_QUERY,
    serverIdleTimeout: config.POOLER_SERVER_IDLE_TIMEOUT,
    defaultPoolMode: config.POOL_MODE,
    // The default folder lives in TENANTRY_HOME, Tenantry's own: it may be opened to PgBouncer's user.
    ownFolders: config.POOLER_DIR ? [] : [config.TENANTRY_HOME],
    failpoints: options.failpoints,
    logger,
  });
  await pgbouncer.claim(); // fails, touching nothing, if another live Tenantry owns the folder
  let auth: PoolerAuth;
  try {
    auth = await PoolerAuth.prepare(cluster, roles, await poolerPassword(db, roles.authUser), logger);
  } catch (err) {
    await pgbouncer.stop();
    throw err;
  }
  const driver = new PgBouncerDriver({
    settings: pgbouncer.settings,
    admin: pgbouncer.admin,
    authUser: { user: roles.authUser, password: auth.password },
    clientSlots: { perConnection: config.POOLER_CLIENTS_PER_CONNECTION, fixed: config.POOLER_MAX_CLIENT_CONN, fileLimit: openFileLimit() },
    fileOwner: pgbouncer.fileOwner,
    logger,
  });
  const pools = new PoolSync({ db, driver, mode: config.POOL_MODE, logger, status: () => pgbouncer.status(), auth: { auth, cluster }, events, locks, clusters });

  // Down: pools turn ERROR; back: the configuration is re-applied and they return to IN_SYNC.
  const metrics = options.registry ? poolerMetrics(options.registry) : null;
  metrics?.configWritable.set(1);
  pools.on('configWrite', (state) => metrics?.configWritable.set(state.error ? 0 : 1));
  pools.on('configWriteFailed', (code) => metrics?.configWriteFailures.inc({ code }));
  let restarts = 0;
  pgbouncer.on('down', () => {
    metrics?.up.set(0);
    void pools.request();
  });
  pgbouncer.on('up', (s: PoolerStatus) => {
    metrics?.up.set(1);
    if (s.restarts === restarts) return; // the first start: verified below
    metrics?.restarts.inc(s.restarts - restarts);
    restarts = s.restarts;
    void pools.request();
  });

  try {
    await pools.writeInitial();
    await pgbouncer.start();
  } catch (err) {
    await pgbouncer.stop();
    throw err;
  }
  logger.info({ dir, port: config.POOLER_PORT, pid: pgbouncer.pid }, 'PgBouncer started');
  await pools.request(); // verifies what PgBouncer loaded and records it
  // Every other registered cluster, in the background: one that does not answer must not hold
  // up the start (its tenants' pools need nothing from it to be written).
  void pools.prepareClusters();
  return {
    kind,
    driver,
    pools,
    description: `PgBouncer on ${config.POOLER_HOST}:${config.POOLER_PORT} (${config.POOL_MODE} pooling, files in ${dir})`,
    process: pgbouncer,
    status: () => pools.status(),
    stop: async () => {
      await pools.close();
      await pgbouncer.stop();
    },
  };
}

function poolerMetrics(registry: Registry) {
  return {
    restarts: new Counter({ name: 'tenantry_pooler_restarts_total', help: 'Times Tenantry restarted the PgBouncer it runs after it exited on its own', registers: [registry] }),
    up: new Gauge({ name: 'tenantry_pooler_up', help: '1 while the PgBouncer Tenantry runs is serving, 0 while it is down', registers: [registry] }),
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
