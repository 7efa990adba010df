// A PgBouncer that Tenantry owns: its folder (locked, so one live Tenantry owns it), its
// process (in the foreground, our child, in a process group of its own so that a terminal's
// Ctrl-C reaches only Tenantry, which stops it in order), and its supervision: when it exits
// without being asked to, it is started again with backoff, and listeners hear 'down' and 'up'.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Failpoints } from '../../../platform/failpoints.js';
import type { Logger } from '../../../platform/logger.js';
import { AdminConsole } from './admin-console.js';
import { generateAdminCredentials, type AdminCredentials } from './auth-file.js';
import type { FileOwner } from './config-files.js';
import { localAddress, pgBouncerFiles, type PgBouncerSettings } from './pgbouncer-config.js';
import { isAlive, lockPoolerFolder, lookupOsUser, preparePoolerFolder, type OsUser } from './pooler-folder.js';

/** The pgbouncer executable on PATH, else in the usual package locations; null when absent. */
export function findPgBouncer(): string | null {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const candidates = [...dirs.map((d) => path.join(d, 'pgbouncer')), '/usr/sbin/pgbouncer', '/usr/local/sbin/pgbouncer', '/usr/local/bin/pgbouncer', '/opt/homebrew/bin/pgbouncer'];
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // keep looking
    }
  }
  return null;
}

interface PgBouncerProcessOptions
  extends Pick<PgBouncerSettings, 'listenPort' | 'serverHost' | 'serverPort' | 'authUser' | 'authQuery'>,
    Partial<Pick<PgBouncerSettings, 'listenHost' | 'serverIdleTimeout' | 'defaultPoolMode'>> {
  /** Folder for the ini, auth file, log and pid file; created if missing (see preparePoolerFolder). */
  dir: string;
  binary?: string;
  /** Folders of Tenantry's own above `dir` that may be opened to PgBouncer's OS user (TENANTRY_HOME). */
  ownFolders?: string[];
  /** Restart PgBouncer when it exits on its own (default true). */
  supervise?: boolean;
  /** Named points tests may step in at: `pooler.before-restart` is awaited before each restart. */
  failpoints?: Failpoints;
  logger?: Logger;
}

type PoolerState = 'stopped' | 'starting' | 'up' | 'down';

/** What readiness and pool statuses read: is the pooler Tenantry runs serving? */
export interface PoolerStatus {
  state: PoolerState;
  since: Date;
  /** Restarts after an exit Tenantry did not ask for, since this process started. */
  restarts: number;
  /** How it last ended on its own, e.g. "killed by SIGKILL". */
  lastExit: string | null;
  pid: number | null;
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** 250 ms after the first exit, doubling per exit that follows a short run, at most 30 s. */
function restartDelayMs(consecutiveFailures: number): number {
  return Math.min(30_000, 250 * 2 ** Math.min(consecutiveFailures, 7));
}
/** A run at least this long resets the backoff. */
const STABLE_MS = 60_000;

export class PgBouncerProcess extends EventEmitter<{ up: [PoolerStatus]; down: [PoolerStatus] }> {
  readonly settings: PgBouncerSettings;
  readonly admin: AdminCredentials;
  /** Set when PgBouncer runs as another OS user: files are written with this owner. */
  readonly fileOwner: FileOwner | undefined;
  private readonly runAs: OsUser | undefined;
  private readonly binary: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private releaseFolder: (() => Promise<void>) | undefined;
  private state: PoolerState = 'stopped';
  private since = new Date();
  private startedAt = 0;
  private restarts = 0;
  private failures = 0;
  private lastExit: string | null = null;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarting: Promise<void> | undefined;
  /** The end of PgBouncer's own output, for error messages. */
  private output: string[] = [];
  private readonly killOnExit = () => this.child?.kill('SIGTERM');

  constructor(private readonly options: PgBouncerProcessOptions) {
    super();
    const binary = options.binary ?? findPgBouncer();
    if (!binary) throw new Error('pgbouncer was not found on PATH or in /usr/sbin; install PgBouncer or pass its path');
    this.binary = binary;
    // PgBouncer refuses to run as root: then it runs as postgres.
    this.runAs = process.getuid?.() === 0 ? lookupOsUser('postgres') : undefined;
    this.fileOwner = this.runAs ? { uid: this.runAs.uid, gid: this.runAs.gid } : undefined;
    this.admin = generateAdminCredentials();
    this.settings = {
      listenHost: options.listenHost ?? '127.0.0.1',
      listenPort: options.listenPort,
      serverHost: options.serverHost,
      serverPort: options.serverPort,
      adminUser: this.admin.user,
      authUser: options.authUser,
      authQuery: options.authQuery,
      serverIdleTimeout: options.serverIdleTimeout ?? 10,
      defaultPoolMode: options.defaultPoolMode ?? 'transaction',
      files: pgBouncerFiles(options.dir),
    };
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  status(): PoolerStatus {
    return { state: this.state, since: this.since, restarts: this.restarts, lastExit: this.lastExit, pid: this.pid ?? null };
  }

  /**
   * Makes the folder usable by PgBouncer's user, locks it for this Tenantry, and stops a
   * PgBouncer left running there by a Tenantry that died. Fails with
   * PoolerFolderBusyError, touching nothing, when another live Tenantry holds it.
   * start() calls it; call it first to write the configuration before PgBouncer starts.
   */
  async claim(): Promise<void> {
    if (this.releaseFolder) return;
    const { files } = this.settings;
    await preparePoolerFolder(files.dir, files, this.runAs, this.options.ownFolders);
    this.releaseFolder = await lockPoolerFolder(files.dir, (err) =>
      this.options.logger?.error({ err, dir: files.dir }, 'lost the pooler folder lock (the event loop stalled, or someone removed it)'),
    );
    await this.stopLeftover();
  }

  /** Starts PgBouncer on the files already in the folder (the driver writes them), and supervises it. */
  async start(): Promise<void> {
    if (this.pid !== undefined) return;
    this.stopping = false;
    await this.claim();
    try {
      await access(this.settings.files.ini).catch(() => {
        throw new Error(`${this.settings.files.ini} does not exist: write the configuration before starting PgBouncer`);
      });
      await this.spawnAndWait(false);
    } catch (err) {
      await this.stop(); // releases the folder: nothing of ours is left running
      throw err;
    }
  }

  /** SIGTERM is PgBouncer 1.18's immediate shutdown (SIGINT would wait for sessions to end). Ends supervision. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    await this.restarting;
    process.removeListener('exit', this.killOnExit);
    const child = this.child;
    if (child && this.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    this.setState('stopped');
    const release = this.releaseFolder;
    this.releaseFolder = undefined;
    await release?.();
  }

  private setState(state: PoolerState): void {
    if (this.state === state) return;
    this.state = state;
    this.since = new Date();
  }

  private async spawnAndWait(restart: boolean): Promise<void> {
    this.setState('starting');
    this.output = [];
    const { files } = this.settings;
    const args = [...(this.runAs ? ['-u', this.runAs.name] : []), files.ini];
    const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    const keep = (chunk: Buffer) => (this.output = [...this.output, ...chunk.toString('utf8').split('\n').filter(Boolean)].slice(-20));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        resolve();
        this.onExit(child, code, signal);
      }),
    );
    child.once('error', (err) => this.output.push(String(err)));
    process.removeListener('exit', this.killOnExit);
    process.once('exit', this.killOnExit);

    const probe = new AdminConsole({ ...localAddress(this.settings), user: this.admin.user, password: this.admin.password, connectTimeoutMs: 1000 });
    const up = await waitFor(
      () => this.child !== child || this.pid === undefined || probe.ping().then(() => true, () => false),
      10_000,
      100,
    );
    if (!up || this.child !== child || this.pid === undefined) {
      if (this.child === child && this.pid !== undefined) {
        child.kill('SIGKILL');
        await this.exited;
      }
      this.setState('down');
      throw new Error(`PgBouncer did not start on ${this.settings.listenHost}:${this.settings.listenPort}: ${this.output.join(' | ') || 'no output'}`);
    }
    this.startedAt = Date.now();
    if (restart) this.restarts++;
    this.setState('up');
    this.emit('up', this.status());
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child || this.stopping || this.state !== 'up') return; // asked to stop, or still starting (start reports it)
    this.lastExit = signal ? `killed by ${signal}` : `exited with code ${code}`;
    if (Date.now() - this.startedAt >= STABLE_MS) this.failures = 0;
    this.setState('down');
    this.options.logger?.error({ pid: child.pid, exit: this.lastExit, output: this.output.slice(-5) }, 'PgBouncer stopped unexpectedly; restarting it');
    this.emit('down', this.status());
    if (this.options.supervise !== false) this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = restartDelayMs(this.failures++);
    this.restartTimer = setTimeout(() => {
      this.restarting = (async () => {
        if (this.stopping) return;
        try {
          await this.options.failpoints?.hit('pooler.before-restart');
          if (this.stopping) return;
          await this.spawnAndWait(true);
          this.options.logger?.warn({ pid: this.pid, restarts: this.restarts, after: this.lastExit }, 'PgBouncer restarted');
        } catch (err) {
          if (this.stopping) return;
          this.options.logger?.error({ err, retryInMs: restartDelayMs(this.failures) }, 'PgBouncer did not restart; trying again');
          this.scheduleRestart();
        }
      })().finally(() => (this.restarting = undefined));
    }, delay);
    this.restartTimer.unref();
  }

  /** A PgBouncer still running on this folder's ini (its Tenantry died): stop it. Only called with the folder locked. */
  private async stopLeftover(): Promise<void> {
    const pid = Number((await readFile(this.settings.files.pidFile, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes('pgbouncer') || !cmdline.includes(this.settings.files.ini)) return;
    this.options.logger?.warn({ pid }, 'stopping a PgBouncer left running in the pooler folder by a Tenantry that is gone');
    process.kill(pid, 'SIGTERM');
    if (!(await waitFor(() => !isAlive(pid), 10_000))) process.kill(pid, 'SIGKILL');
  }
}
