// The PgCat PoolerDriver: desired pools → pgcat.toml → RELOAD → checked against SHOW
// DATABASES, rolled back to the last accepted file when PgCat disagrees.
// Written from PgCat's source and docs only: it has never run against a live PgCat.
import {
  PoolerConfigError,
  PoolerUnavailableError,
  type ObservedPool,
  type PoolerDriver,
  type PoolSpec,
  type PoolStats,
} from '../pooler-driver.js';
import type { FileOwner } from '../pgbouncer/config-files.js';
import { localAddress, OneAtATime } from '../pooler-plumbing.js';
import { comparePools, describeDrift } from '../pool-drift.js';
import { PgCatAdmin } from './pgcat-admin.js';
import { effectivePoolSize, renderPgCatToml, validatePgCatConfig, type PgCatFiles, type PgCatSettings } from './pgcat-config.js';
import { restorePgCatLastGood, savePgCatLastGood, writePgCatConfig } from './pgcat-files.js';

/**
 * Plaintext password of each role. PgCat cannot log in with the SCRAM verifiers PostgreSQL
 * stores (see pgcat-config.ts), so readScramVerifiers does not fit here. Throw
 * PoolerConfigError for roles that cannot be served; missing roles are reported too.
 */
export type PgCatPasswordSource = (roles: readonly string[]) => Promise<ReadonlyMap<string, string>>;

export interface PgCatDriverOptions {
  settings: PgCatSettings;
  files: PgCatFiles;
  passwords: PgCatPasswordSource;
  /** Owner for the file when PgCat runs as another OS user. */
  fileOwner?: FileOwner;
  /** Host clients should use, when it differs from the listen address (e.g. 0.0.0.0). */
  publicHost?: string;
  connectTimeoutMs?: number;
}

/**
 * What differs between the pools we asked for and what PgCat runs. PgCat reports the
 * user's pool_size as both pool_size and max_connections, so both are compared with the
 * size we rendered.
 */
export function pgCatDifferences(expected: readonly PoolSpec[], observed: readonly ObservedPool[]): string[] {
  const rendered = expected.map((p) => ({ ...p, poolSize: effectivePoolSize(p), maxDbConnections: effectivePoolSize(p) }));
  return describeDrift(comparePools(rendered, observed));
}

export class PgCatDriver implements PoolerDriver {
  readonly kind = 'pgcat' as const;
  readonly address: { host: string; port: number };
  private readonly admin: PgCatAdmin;
  /** Applies run one at a time: each one rewrites the same file. */
  private readonly applies = new OneAtATime();

  constructor(private readonly options: PgCatDriverOptions) {
    const local = localAddress(options.settings.listenHost, options.settings.listenPort);
    this.address = { host: options.publicHost ?? local.host, port: local.port };
    this.admin = new PgCatAdmin({
      ...local,
      user: options.settings.adminUser,
      password: options.settings.adminPassword,
      connectTimeoutMs: options.connectTimeoutMs,
    });
  }

  apply(pools: PoolSpec[]): Promise<void> {
    return this.applies.run(() => this.applyNow(pools));
  }

  /** PgCat's admin console has no SHOW VERSION; SHOW POOLS is small enough. */
  async ping(): Promise<void> {
    await this.admin.showPools();
  }

  observe(): Promise<ObservedPool[]> {
    return this.admin.showDatabases();
  }

  stats(): Promise<Map<string, PoolStats>> {
    return this.admin.showPools();
  }

  /** Nothing is held open between calls; waits for an apply in flight. */
  async close(): Promise<void> {
    await this.applies.idle();
  }

  private async applyNow(pools: PoolSpec[]): Promise<void> {
    const { settings, files, fileOwner } = this.options;
    // Everything that can be refused is checked before the first byte is written.
    validatePgCatConfig(settings, pools);
    const passwords = await this.options.passwords([...new Set(pools.map((p) => p.user))]);
    const toml = renderPgCatToml(settings, pools, passwords);

    await writePgCatConfig(files, toml, fileOwner);
    const reloaded = await this.admin.reload(); // PoolerUnavailableError: the file waits for the next start

    // A refused RELOAD drops the connection, like a crash would: ask again to tell them apart.
    const diffs = pgCatDifferences(pools, await this.admin.showDatabases());
    if (!reloaded) diffs.unshift('RELOAD was refused');
    if (diffs.length === 0) {
      await savePgCatLastGood(files, toml, fileOwner);
      return;
    }
    throw new PoolerConfigError(`PgCat did not apply the configuration (${diffs.join('; ')}); ${await this.rollBack()}; see PgCat's log`);
  }

  /** Back to the last file PgCat accepted; says what happened, for the error message. */
  private async rollBack(): Promise<string> {
    const { files, fileOwner } = this.options;
    if (!(await restorePgCatLastGood(files, fileOwner))) return 'no last good configuration to restore';
    try {
      return (await this.admin.reload()) ? 'the last good configuration was restored and reloaded' : 'the last good configuration was restored but PgCat refused it too';
    } catch (err) {
      if (err instanceof PoolerUnavailableError) return 'the last good configuration was restored on disk';
      throw err;
    }
  }
}
