// pgcat.toml from settings, pool specs and the tenant roles' passwords. Rendered with
// smol-toml (so quoting is never ours to get right), after the same name/size checks the
// PgBouncer driver uses: names also become table keys and SHOW DATABASES names here.
//
// What PgCat's source says (postgresml/pgcat: src/config.rs, src/client.rs, src/server.rs,
// src/auth_passthrough.rs, CONFIG.md); not checked against a running PgCat:
// - `users.<n>.password` is plaintext. Clients get an MD5 challenge computed from it, and
//   PgCat's own SCRAM login to PostgreSQL needs it. A SCRAM verifier or "md5…" hash there
//   would be taken as the password itself. The only hash path (auth_query) accepts md5
//   hashes only, and Tenantry's roles have SCRAM passwords. So this file holds plaintext
//   (admin password included) and is written mode 0600.
// - There is no per-database cap like PgBouncer's max_db_connections: a pool's server
//   connections are the sum of its users' pool_size. With one user per pool, pool_size is
//   the cap, so it gets min(poolSize, maxDbConnections): what PgBouncer would enforce.
// - There is no global pool mode; each pool has its own (default "transaction").
import path from 'node:path';
import { stringify } from 'smol-toml';
import { PoolerConfigError, type PoolMode, type PoolSpec } from '../pooler-driver.js';
import { isSafeName, poolSpecProblems } from '../pgbouncer/pgbouncer-config.js';

export interface PgCatSettings {
  listenHost: string;
  listenPort: number;
  /** The PostgreSQL server every pool points at. */
  serverHost: string;
  serverPort: number;
  /** Login for the admin console (database `pgcat`); PgCat stores the password as given. */
  adminUser: string;
  adminPassword: string;
  /** Checked for parity with PgBouncerSettings; not rendered (PgCat has no global mode). */
  defaultPoolMode: PoolMode;
}

/** Where a Tenantry-owned PgCat keeps its configuration. */
export interface PgCatFiles {
  dir: string;
  config: string;
  lastGoodConfig: string;
}

export function pgCatFiles(dir: string): PgCatFiles {
  const d = path.resolve(dir);
  return { dir: d, config: path.join(d, 'pgcat.toml'), lastGoodConfig: path.join(d, 'pgcat.toml.last-good') };
}

/** Both names open the admin console in PgCat (src/client.rs), so no pool may take them. */
export const PGCAT_ADMIN_DATABASES: readonly string[] = ['pgcat', 'pgbouncer'];

const HOST = /^[A-Za-z0-9._:-]{1,253}$/;
const MODES: readonly PoolMode[] = ['session', 'transaction'];
/** What PostgreSQL stores instead of a password; PgCat would treat either as the password. */
const NOT_PLAINTEXT = /^(?:SCRAM-SHA-256\$|md5[0-9a-f]{32}$)/;

function secretProblem(label: string, secret: unknown): string | null {
  if (typeof secret !== 'string' || secret === '') return `${label} is empty`;
  if (secret.includes('\0')) return `${label} contains a NUL character`;
  if (NOT_PLAINTEXT.test(secret)) return `${label} is a stored hash; PgCat needs the plaintext password`;
  return null;
}

function settingsProblems(s: PgCatSettings): string[] {
  const problems: string[] = [];
  const port = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (!HOST.test(s.listenHost)) problems.push(`listenHost ${JSON.stringify(s.listenHost)} is not a plain host`);
  if (!HOST.test(s.serverHost)) problems.push(`serverHost ${JSON.stringify(s.serverHost)} is not a plain host`);
  if (!port(s.listenPort)) problems.push(`listenPort ${s.listenPort} is not a port`);
  if (!port(s.serverPort)) problems.push(`serverPort ${s.serverPort} is not a port`);
  if (!isSafeName(s.adminUser)) problems.push(`adminUser ${JSON.stringify(s.adminUser)} is not a safe name`);
  const admin = secretProblem('adminPassword', s.adminPassword);
  if (admin) problems.push(admin);
  if (!MODES.includes(s.defaultPoolMode)) problems.push(`defaultPoolMode must be one of ${MODES.join(', ')}`);
  return problems;
}

function pgCatPoolProblems(s: PgCatSettings, pools: readonly PoolSpec[]): string[] {
  const problems = poolSpecProblems(pools);
  for (const p of pools) {
    // poolSpecProblems already refuses "pgbouncer".
    if (p.name === 'pgcat') problems.push('pool "pgcat": "pgcat" is the admin console');
    if (p.user === s.adminUser) problems.push(`pool "${p.name}": role "${p.user}" is the pooler's admin user`);
  }
  return problems;
}

/** Everything checkable without the passwords; throws PoolerConfigError listing every problem. */
export function validatePgCatConfig(settings: PgCatSettings, pools: readonly PoolSpec[]): void {
  const problems = [...settingsProblems(settings), ...pgCatPoolProblems(settings, pools)];
  if (problems.length > 0) throw new PoolerConfigError(`invalid PgCat configuration: ${problems.join('; ')}`);
}

/** Server connections PgCat may open for this pool (see the note at the top). */
export function effectivePoolSize(p: PoolSpec): number {
  return Math.min(p.poolSize, p.maxDbConnections);
}

function poolTable(settings: PgCatSettings, p: PoolSpec, password: string) {
  return {
    pool_mode: p.mode,
    // One primary and nothing to route: no query parsing, always the primary.
    default_role: 'primary',
    query_parser_enabled: false,
    primary_reads_enabled: true,
    sharding_function: 'pg_bigint_hash', // required by older PgCat releases
    users: { '0': { username: p.user, password, pool_size: effectivePoolSize(p), min_pool_size: 0 } },
    shards: { '0': { servers: [[settings.serverHost, settings.serverPort, 'primary']], database: p.database } },
  };
}

/**
 * The whole pgcat.toml for exactly these pools. `passwords` maps each tenant role to its
 * plaintext password. Throws PoolerConfigError (rendering nothing) when anything is off.
 */
export function renderPgCatToml(settings: PgCatSettings, pools: readonly PoolSpec[], passwords: ReadonlyMap<string, string>): string {
  validatePgCatConfig(settings, pools);
  const problems: string[] = [];
  for (const p of pools) {
    const problem = passwords.has(p.user) ? secretProblem(`password of role "${p.user}"`, passwords.get(p.user)) : `no password for role "${p.user}"`;
    if (problem) problems.push(`pool "${p.name}": ${problem}`);
  }
  if (problems.length > 0) throw new PoolerConfigError(`invalid PgCat configuration: ${problems.join('; ')}`);

  const sorted = [...pools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const doc = {
    general: {
      host: settings.listenHost,
      port: settings.listenPort,
      admin_username: settings.adminUser,
      admin_password: settings.adminPassword,
      // Older releases require the exporter port even when the exporter is off.
      enable_prometheus_exporter: false,
      prometheus_exporter_port: 9930,
      // No `autoreload`: Tenantry reloads through the admin console and then verifies.
    },
    pools: Object.fromEntries(sorted.map((p) => [p.name, poolTable(settings, p, passwords.get(p.user) as string)])),
  };
  return `# Written by Tenantry; edits are overwritten on the next apply.\n${stringify(doc)}`;
}
