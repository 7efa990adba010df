// The pooler driver: desired pools → pgbouncer.ini (rendered once per apply) →
// RELOAD → checked against SHOW DATABASES, rolled back to the last accepted ini when
// PgBouncer disagrees. Tenants authenticate through auth_query, so no apply reads or
// writes a password.
import type { Logger } from '../../../platform/logger.js';
import {
  PoolerConfigError,
  PoolerFilesError,
  PoolerUnavailableError,
  NO_ACTIVITY,
  type ApplyOptions,
  type ObservedPool,
  type PoolerAddress,
  type PoolerDriver,
  type PoolSpec,
  type PoolStats,
  type PoolStatsReading,
} from '../pooler-driver.js';
import { comparePools, describeDrift } from '../pool-drift.js';
import { AdminConsole, PauseTimeoutError } from './admin-console.js';
import { renderAuthFile, type AdminCredentials, type Credentials } from './auth-file.js';
import { clientSlots, type ClientSlots, type ClientSlotSizing } from './client-slots.js';
import {
  asFileSystemError,
  describeWriteFailure,
  forgetLastGood,
  configVerdictSince,
  logSize,
  writeAuthFile,
  writeIni,
  type FileOwner,
} from './config-files.js';
import { ADMIN_DATABASE, AUTH_QUERY_SLOTS, IniRenderer, isSafeName, localAddress, type PgBouncerSettings } from './pgbouncer-config.js';

export { PauseTimeoutError };

/** Pool names reach an admin-console command: only names the ini could hold. */
function checkedName(name: string): string {
  if (!isSafeName(name) || name === ADMIN_DATABASE) throw new PoolerConfigError(`not a pool name: ${JSON.stringify(name)}`);
  return name;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
/** PgBouncer's answer to a command on a database it does not run. */
const isNoSuchDatabase = (err: unknown) => /no such database/i.test(messageOf(err));
/** PgBouncer's answer to RESUME of a database that is not paused. */
const isNotPaused = (err: unknown) => /not paused/i.test(messageOf(err));

interface PgBouncerDriverOptions {
  settings: PgBouncerSettings;
  admin: AdminCredentials;
  /** The login auth_query runs as, with its plaintext password (it goes to the 0600 auth file only). */
  authUser: Credentials;
  /** How max_client_conn follows the fleet (client-slots.ts). */
  clientSlots: ClientSlotSizing;
  /** Owner for the files when PgBouncer runs as another OS user. */
  fileOwner?: FileOwner;
  logger?: Logger;
}

/**
 * Not safe for concurrent calls: PoolSync's single apply queue is its only caller (tests
 * call it one step at a time).
 */
export class PgBouncerDriver implements PoolerDriver {
  readonly kind = 'pgbouncer' as const;
  readonly address: PoolerAddress;
  private readonly console: AdminConsole;
  /** max_client_conn as last rendered, and whether the file-descriptor limit lowered it. */
  lastClientSlots: ClientSlots | null = null;
  /** How the last apply was checked: PgBouncer's log (`log`) or SHOW DATABASES in full (`show`). */
  lastVerified: 'log' | 'show' | null = null;
  /**
   * The last ini PgBouncer accepted, kept in memory for a rollback: it only serves this
   * PgBouncer's life (writeFiles forgets it at every start), so a copy on disk saved nothing a
   * crash would need, and cost a write of the whole file on every apply. Null: none yet.
   */
  private lastGood: string | null = null;
  private readonly renderer = new IniRenderer();

  constructor(private readonly options: PgBouncerDriverOptions) {
    this.address = localAddress(options.settings);
    this.console = new AdminConsole({ ...this.address, user: options.admin.user, password: options.admin.password, hold: true });
  }

  get addresses(): readonly PoolerAddress[] {
    return [this.address];
  }

  addressOf(): PoolerAddress {
    return this.address;
  }

  /**
   * Writes both files for exactly these pools without telling PgBouncer: before it starts,
   * so it starts with every pool (a start is not drift). Throws PoolerConfigError, having
   * written nothing, when the pools cannot be rendered.
   */
  async writeFiles(pools: readonly PoolSpec[]): Promise<void> {
    const { settings, admin, authUser, fileOwner } = this.options;
    const ini = this.render(pools);
    const authFile = renderAuthFile(admin, authUser);
    // A last good ini from an earlier start may predate this one's settings: the first verified
    // apply keeps a new one. (Earlier versions kept it on disk, beside an auth-file copy: removed.)
    this.lastGood = null;
    const atStart = 'PgBouncer cannot start until';
    await this.writing(settings.files.lastGoodIni, () => forgetLastGood(settings.files), atStart);
    await this.writing(settings.files.authFile, () => writeAuthFile(settings.files, authFile, fileOwner), atStart);
    await this.writing(settings.files.ini, () => writeIni(settings.files, ini, fileOwner), atStart);
  }

  /**
   * Renders the whole configuration for exactly these pools, validates it, writes it
   * atomically, reloads, and verifies with what the pooler reports.
   * Throws PoolerUnavailableError when the pooler cannot be reached (the file is still
   * written, so a restarted pooler picks it up: retry later), PoolerConfigError when the
   * pools cannot be applied (nothing written, or the last good configuration restored:
   * retrying the same pools will not help), PoolerFilesError when the configuration cannot
   * be written (the pooler keeps what it runs: retry once the folder is writable).
   */
  async apply(pools: readonly PoolSpec[], options: ApplyOptions = {}): Promise<void> {
    const { settings, fileOwner } = this.options;
    // Rendering validates: everything that can be refused is checked before a byte is written.
    const ini = this.render(pools);
    // The log's size is taken while the ini is written (PgBouncer logs nothing of it before RELOAD).
    const [, logFrom] = await Promise.all([
      this.writing(settings.files.ini, () => writeIni(settings.files, ini, fileOwner, false)),
      options.verify === 'log' ? logSize(settings.files.logFile) : null,
    ]);
    await this.console.reload(); // PoolerUnavailableError: the file waits for the next start
    // PgBouncer answered the RELOAD: the file it read is the one just written.
    const accepted = () => void (this.lastGood = ini);

    // RELOAD succeeds even when PgBouncer rejected part of the file. The cheap check: it logs
    // a refusal before it answers. Only when it did (or its log cannot be read) is SHOW
    // DATABASES compared in full: its output grows with the fleet (177 ms at 10,000 pools).
    if (logFrom !== null && (await configVerdictSince(settings.files.logFile, logFrom)) === 'clean') {
      this.lastVerified = 'log';
      return accepted();
    }
    this.lastVerified = 'show';
    const diffs = describeDrift(comparePools(pools, await this.observe()));
    if (diffs.length === 0) return accepted();
    throw new PoolerConfigError(`PgBouncer did not apply the configuration (${diffs.join('; ')}); ${await this.rollBack()}; see ${settings.files.logFile}`);
  }

  /** What PgBouncer runs now, tenant pools only, in the terms of PoolSpec (max_db_connections less the auth_query slot). */
  async observe(): Promise<ObservedPool[]> {
    const pools = await this.console.showDatabases();
    return pools.map((p) => ({ ...p, maxDbConnections: p.maxDbConnections ? p.maxDbConnections - AUTH_QUERY_SLOTS : p.maxDbConnections }));
  }

  /** Nothing to remember: one PgBouncer is applied on every change. */
  shownRunning(): void {}

  async observePool(name: string): Promise<ObservedPool | null> {
    return (await this.observe()).find((p) => p.name === name) ?? null;
  }

  async poolStats(): Promise<PoolStatsReading> {
    const byName = await this.stats();
    return { of: (name) => byName.get(name) ?? NO_ACTIVITY };
  }

  /** Client and server counts, summed per pool name. */
  stats(): Promise<Map<string, PoolStats>> {
    return this.console.showPools();
  }

  /** Resolves once the pooler answers (cheap: for readiness). */
  ping(): Promise<void> {
    return this.console.ping();
  }

  /**
   * The pooler's server connections by role and PostgreSQL backend pid (pooledBackendKey), and
   * whether a client is attached to each (one query; the usage sampler tells pooled from direct
   * sessions, on every cluster).
   */
  serverBackends(): Promise<Map<string, { clientAttached: boolean }>> {
    return this.console.showServers();
  }

  /**
   * Pauses one pool for a cutover (PAUSE): resolves once it holds no server connection, its
   * clients queued. Past `timeoutMs`, resumes it and throws PauseTimeoutError. A pool
   * PgBouncer does not run has nothing to pause: resolves.
   */
  async pause(name: string, timeoutMs: number): Promise<void> {
    const pool = checkedName(name);
    try {
      await this.console.pause(pool, timeoutMs);
    } catch (err) {
      if (isNoSuchDatabase(err)) return;
      if (err instanceof PauseTimeoutError) await this.resume(pool);
      throw err;
    }
  }

  /** RESUME of one pool; a pool that is not paused, or not run at all, is done already (idempotent). */
  async resume(name: string): Promise<void> {
    const pool = checkedName(name);
    try {
      await this.console.resume(pool);
    } catch (err) {
      if (isNotPaused(err) || isNoSuchDatabase(err)) return;
      throw err;
    }
  }

  /** RECONNECT of one pool: its server connections close once released (after a repoint, to the old server). */
  async reconnect(name: string): Promise<void> {
    const pool = checkedName(name);
    try {
      await this.console.reconnect(pool);
    } catch (err) {
      if (isNoSuchDatabase(err)) return;
      throw err;
    }
  }

  /** Closes the admin console's held connection. */
  async close(): Promise<void> {
    await this.console.close();
  }

  /** The ini text for these pools, validated, with max_client_conn sized from them. */
  private render(pools: readonly PoolSpec[]): string {
    const slots = clientSlots(pools.map((p) => ({ maxDbConnections: p.maxDbConnections + AUTH_QUERY_SLOTS })), this.options.clientSlots);
    if (slots.capped && (this.lastClientSlots?.maxClientConn !== slots.maxClientConn || !this.lastClientSlots.capped)) {
      this.options.logger?.warn(
        { wanted: slots.wanted, maxClientConn: slots.maxClientConn, fileLimit: this.options.clientSlots.fileLimit },
        'max_client_conn is capped by the open-file limit (RLIMIT_NOFILE); raise it (ulimit -n, LimitNOFILE) for more pooled clients',
      );
    }
    this.lastClientSlots = slots;
    return this.renderIni(pools, slots.maxClientConn);
  }

  /** A seam for tests that need a file PgBouncer only partly accepts. */
  protected renderIni(pools: readonly PoolSpec[], maxClientConn: number): string {
    return this.renderer.render(this.options.settings, pools, maxClientConn);
  }

  /**
   * Runs a write of `file`; a file-system failure (EPERM, EACCES, EROFS, ENOSPC...) becomes
   * PoolerFilesError, with what PgBouncer runs meanwhile when it answers.
   */
  private async writing(file: string, write: () => Promise<void>, consequence = 'PgBouncer keeps the configuration it last read, and Tenantry retries until'): Promise<void> {
    try {
      await write();
    } catch (err) {
      const failure = asFileSystemError(err);
      if (!failure) throw err;
      const running = await this.observe().catch(() => null);
      throw new PoolerFilesError(
        `${describeWriteFailure(file, failure)}: ${consequence} the file and its folder can be written ` +
          '(check their owner and permissions, the immutable attribute (lsattr), free space, a read-only mount)',
        failure.code,
        running,
        { cause: err },
      );
    }
  }

  /** Back to the last ini PgBouncer accepted; says what happened, for the error message. */
  private async rollBack(): Promise<string> {
    const { settings, fileOwner } = this.options;
    if (this.lastGood === null) return 'no last good configuration to restore';
    try {
      await writeIni(settings.files, this.lastGood, fileOwner);
    } catch (err) {
      const failure = asFileSystemError(err);
      if (!failure) throw err;
      return `the last good configuration could not be restored: ${describeWriteFailure(settings.files.ini, failure)}`;
    }
    try {
      await this.console.reload();
      return 'the last good configuration was restored and reloaded';
    } catch (err) {
      if (err instanceof PoolerUnavailableError) return 'the last good configuration was restored on disk';
      throw err;
    }
  }
}
