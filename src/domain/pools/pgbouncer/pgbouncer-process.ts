// A PgBouncer that Tenantry owns: its folder, its files, its process. Started in the
// foreground (not daemonized) so it is our child; its pid is tracked so a copy left behind
// by a crashed Tenantry is stopped before a new one starts in the same folder.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chown, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PoolMode } from '../pooler-driver.js';
import { AdminConsole } from './admin-console.js';
import { generateAdminCredentials, renderAuthFile, type AdminCredentials } from './auth-file.js';
import { saveLastGood, writeConfig, type FileOwner } from './config-files.js';
import { localAddress, pgBouncerFiles, renderPgBouncerIni, type PgBouncerSettings } from './pgbouncer-config.js';

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

export interface PgBouncerProcessOptions {
  /** Folder for the ini, auth file, log and pid file; created if missing. Its parents must be traversable by `runAs`. */
  dir: string;
  listenHost?: string;
  listenPort: number;
  serverHost: string;
  serverPort: number;
  binary?: string;
  /** OS user PgBouncer runs as; defaults to `postgres` when we are root (PgBouncer refuses root). */
  runAs?: string;
  adminUser?: string;
  maxClientConn?: number;
  defaultPoolMode?: PoolMode;
  startTimeoutMs?: number;
}

function lookupUser(name: string): FileOwner {
  const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export class PgBouncerProcess {
  readonly settings: PgBouncerSettings;
  readonly admin: AdminCredentials;
  /** Set when PgBouncer runs as another OS user: the driver writes files with this owner. */
  readonly fileOwner: FileOwner | undefined;
  private readonly binary: string;
  private readonly runAs: string | undefined;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private initialised = false;
  /** The end of PgBouncer's own output, for error messages. */
  private output: string[] = [];
  private readonly killOnExit = () => this.child?.kill('SIGTERM');

  constructor(private readonly options: PgBouncerProcessOptions) {
    const binary = options.binary ?? findPgBouncer();
    if (!binary) throw new Error('pgbouncer was not found on PATH or in /usr/sbin; install PgBouncer or pass its path');
    this.binary = binary;
    this.runAs = options.runAs ?? (process.getuid?.() === 0 ? 'postgres' : undefined);
    this.fileOwner = this.runAs ? lookupUser(this.runAs) : undefined;
    this.admin = generateAdminCredentials(options.adminUser);
    this.settings = {
      listenHost: options.listenHost ?? '127.0.0.1',
      listenPort: options.listenPort,
      serverHost: options.serverHost,
      serverPort: options.serverPort,
      adminUser: this.admin.user,
      maxClientConn: options.maxClientConn ?? 1000,
      defaultPoolMode: options.defaultPoolMode ?? 'transaction',
      files: pgBouncerFiles(options.dir),
    };
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /**
   * The first start writes a configuration with no pools (the driver adds them); later
   * starts reuse whatever the driver wrote meanwhile, even while PgBouncer was down.
   */
  async start(): Promise<void> {
    if (this.pid !== undefined) return;
    const { files } = this.settings;
    const initial = this.initialised
      ? undefined
      : { ini: renderPgBouncerIni(this.settings, []), authFile: renderAuthFile(this.admin, new Map()) };
    if (initial) {
      await mkdir(files.dir, { recursive: true, mode: 0o700 });
      // PgBouncer writes its log and pid file here after dropping to `runAs`.
      if (this.fileOwner) await chown(files.dir, this.fileOwner.uid, this.fileOwner.gid);
      await this.stopLeftover();
      await writeConfig(files, initial, this.fileOwner);
    }

    this.output = [];
    const args = [...(this.runAs ? ['-u', this.runAs] : []), files.ini];
    const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (chunk: Buffer) => (this.output = [...this.output, ...chunk.toString('utf8').split('\n').filter(Boolean)].slice(-20));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('error', (err) => this.output.push(String(err)));
    process.once('exit', this.killOnExit);

    const probe = new AdminConsole({ ...localAddress(this.settings), user: this.admin.user, password: this.admin.password, connectTimeoutMs: 1000 });
    const up = await waitFor(
      () => this.pid === undefined || probe.ping().then(() => true, () => false),
      this.options.startTimeoutMs ?? 10_000,
      100,
    );
    if (!up || this.pid === undefined) {
      await this.stop();
      throw new Error(`PgBouncer did not start on ${this.settings.listenHost}:${this.settings.listenPort}: ${this.output.join(' | ') || 'no output'}`);
    }
    // PgBouncer accepted the initial pair: it is the first configuration to roll back to.
    if (initial) await saveLastGood(files, initial, this.fileOwner);
    this.initialised = true;
  }

  /** SIGTERM is PgBouncer 1.18's immediate shutdown (SIGINT would wait for sessions to end). */
  async stop(timeoutMs = 10_000): Promise<void> {
    const child = this.child;
    process.removeListener('exit', this.killOnExit);
    if (!child || this.pid === undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** A PgBouncer still running on this folder's ini (our process was killed): stop it. */
  private async stopLeftover(): Promise<void> {
    const pid = Number((await readFile(this.settings.files.pidFile, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes('pgbouncer') || !cmdline.includes(this.settings.files.ini)) return;
    process.kill(pid, 'SIGTERM');
    if (!(await waitFor(() => !isAlive(pid), 10_000))) process.kill(pid, 'SIGKILL');
  }
}
