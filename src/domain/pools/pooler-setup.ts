import path from 'node:path';
import type { Config } from '../../config.js';
import type { ClusterAdmin } from '../../db/cluster-admin.js';
import type { Logger } from '../../logger.js';
import { PgBouncerDriver } from './pgbouncer/pgbouncer-driver.js';
import { findPgBouncer, PgBouncerProcess } from './pgbouncer/pgbouncer-process.js';
import type { PoolerDriver } from './pooler-driver.js';

export interface Pooler {
  kind: 'pgbouncer' | 'pgcat' | 'none';
  driver: PoolerDriver | null;
  /** Why this pooler (for the start-up banner and logs). */
  description: string;
  /** The PgBouncer process Tenantry runs, when it runs one. */
  process: PgBouncerProcess | null;
  stop(): Promise<void>;
}

/**
 * POOLER=pgbouncer (the default when the binary exists) starts a PgBouncer that Tenantry
 * owns, in POOLER_DIR, in front of the default cluster. POOLER=none runs without one:
 * quotas are then enforced by PostgreSQL alone and pooledConnectionString is null.
 */
export async function startPooler(config: Config, cluster: ClusterAdmin, logger: Logger): Promise<Pooler> {
  const binary = findPgBouncer();
  const kind = config.POOLER ?? (binary ? 'pgbouncer' : 'none');
  if (kind === 'none') {
    const description = config.POOLER === 'none' ? 'POOLER=none: no pooler' : 'POOLER=none: pgbouncer was not found on PATH, so no pooler runs (install PgBouncer to get pooled connections)';
    return { kind, driver: null, description, process: null, stop: async () => {} };
  }
  if (kind === 'pgcat') {
    // PgCat logs in to PostgreSQL only with plaintext passwords in pgcat.toml (it cannot use
    // SCRAM verifiers), and Tenantry keeps no tenant password: see README, "Poolers".
    throw new Error('POOLER=pgcat is not supported at start-up: PgCat needs every tenant\'s plaintext password in pgcat.toml, and Tenantry stores none; use POOLER=pgbouncer or none');
  }
  if (!binary) throw new Error('POOLER=pgbouncer, but pgbouncer was not found on PATH or in /usr/sbin (Debian: apt-get install pgbouncer)');
  const dir = path.resolve(config.POOLER_DIR ?? path.join(config.TENANTRY_HOME, 'pgbouncer'));
  const process = new PgBouncerProcess({
    dir,
    binary,
    listenHost: config.POOLER_HOST,
    listenPort: config.POOLER_PORT,
    serverHost: cluster.host,
    serverPort: cluster.port,
    defaultPoolMode: config.POOL_MODE,
  });
  await process.start();
  logger.info({ dir, port: config.POOLER_PORT, pid: process.pid }, 'PgBouncer started');
  const driver = new PgBouncerDriver({ settings: process.settings, admin: process.admin, superuser: cluster.pool, fileOwner: process.fileOwner });
  return {
    kind,
    driver,
    description: `PgBouncer on ${config.POOLER_HOST}:${config.POOLER_PORT} (${config.POOL_MODE} pooling, files in ${dir})`,
    process,
    stop: async () => {
      await driver.close();
      await process.stop();
    },
  };
}
