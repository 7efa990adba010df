// The PgBouncer PoolerDriver: desired pools → files on disk → RELOAD → checked against
// SHOW DATABASES, rolled back to the last accepted files when PgBouncer disagrees.
import {
  PoolerConfigError,
  PoolerUnavailableError,
  type ObservedPool,
  type PoolerDriver,
  type PoolSpec,
  type PoolStats,
} from '../pooler-driver.js';
import { comparePools, describeDrift } from '../pool-drift.js';
import { OneAtATime } from '../pooler-plumbing.js';
import { AdminConsole } from './admin-console.js';
import { readScramVerifiers, renderAuthFile, type AdminCredentials, type Queryable } from './auth-file.js';
import { restoreLastGood, saveLastGood, writeConfig, type FileOwner } from './config-files.js';
import { localAddress, renderPgBouncerIni, validatePgBouncerConfig, type PgBouncerSettings } from './pgbouncer-config.js';

export interface PgBouncerDriverOptions {
  settings: PgBouncerSettings;
  admin: AdminCredentials;
  /** Superuser access to the server the pools point at: role verifiers live in pg_authid. */
  superuser: Queryable;
  /** Owner for the files when PgBouncer runs as another OS user. */
  fileOwner?: FileOwner;
  /** Host clients should use, when it differs from the listen address (e.g. 0.0.0.0). */
  publicHost?: string;
}

/** What differs between the pools we asked for and what PgBouncer runs; empty when they match. */
export function poolDifferences(expected: readonly PoolSpec[], observed: readonly ObservedPool[]): string[] {
  return describeDrift(comparePools(expected, observed));
}

export class PgBouncerDriver implements PoolerDriver {
  readonly kind = 'pgbouncer' as const;
  readonly address: { host: string; port: number };
  private readonly console: AdminConsole;
  /** Applies run one at a time: each one rewrites the same files. */
  private readonly applies = new OneAtATime();

  constructor(private readonly options: PgBouncerDriverOptions) {
    const local = localAddress(options.settings);
    this.address = { host: options.publicHost ?? local.host, port: local.port };
    this.console = new AdminConsole({ ...local, user: options.admin.user, password: options.admin.password });
  }

  apply(pools: PoolSpec[]): Promise<void> {
    return this.applies.run(() => this.applyNow(pools));
  }

  ping(): Promise<void> {
    return this.console.ping();
  }

  observe(): Promise<ObservedPool[]> {
    return this.console.showDatabases();
  }

  stats(): Promise<Map<string, PoolStats>> {
    return this.console.showPools();
  }

  serverBackends(): Promise<Map<number, { clientAttached: boolean }>> {
    return this.console.showServers();
  }

  /** Nothing is held open between calls; waits for an apply in flight. */
  async close(): Promise<void> {
    await this.applies.idle();
  }

  /** The ini text for these pools (already validated). A seam for tests that need a bad file. */
  protected renderIni(pools: readonly PoolSpec[]): string {
    return renderPgBouncerIni(this.options.settings, pools);
  }

  private async applyNow(pools: PoolSpec[]): Promise<void> {
    const { settings, admin, superuser, fileOwner } = this.options;
    // Everything that can be refused is checked before the first byte is written.
    validatePgBouncerConfig(settings, pools);
    const verifiers = await readScramVerifiers(superuser, pools.map((p) => p.user));
    const pair = { ini: this.renderIni(pools), authFile: renderAuthFile(admin, verifiers) };

    await writeConfig(settings.files, pair, fileOwner);
    await this.console.reload(); // PoolerUnavailableError: the files wait for the next start

    // RELOAD succeeds even when PgBouncer rejected part of the file: compare what it runs.
    const diffs = poolDifferences(pools, await this.console.showDatabases());
    if (diffs.length === 0) {
      await saveLastGood(settings.files, pair, fileOwner);
      return;
    }
    throw new PoolerConfigError(`PgBouncer did not apply the configuration (${diffs.join('; ')}); ${await this.rollBack()}; see ${settings.files.logFile}`);
  }

  /** Back to the last pair PgBouncer accepted; says what happened, for the error message. */
  private async rollBack(): Promise<string> {
    const { settings, fileOwner } = this.options;
    if (!(await restoreLastGood(settings.files, fileOwner))) return 'no last good configuration to restore';
    try {
      await this.console.reload();
      return 'the last good configuration was restored and reloaded';
    } catch (err) {
      if (err instanceof PoolerUnavailableError) return 'the last good configuration was restored on disk';
      throw err;
    }
  }
}
