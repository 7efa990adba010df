// pgbouncer.ini from settings and pool specs. Everything that reaches the file is checked
// against a small character set first: the ini format has no escaping, so a newline or a
// `key=value` smuggled into a name would become configuration.
import path from 'node:path';
import { PoolerConfigError, type PoolMode, type PoolSpec } from '../pooler-driver.js';

/** Where a Tenantry-owned PgBouncer keeps its files, all in one folder. */
export interface PgBouncerFiles {
  dir: string;
  ini: string;
  authFile: string;
  /** Where earlier versions kept the last accepted ini (removed at start; it is kept in memory now). */
  lastGoodIni: string;
  logFile: string;
  pidFile: string;
}

export function pgBouncerFiles(dir: string): PgBouncerFiles {
  const d = path.resolve(dir);
  return {
    dir: d,
    ini: path.join(d, 'pgbouncer.ini'),
    authFile: path.join(d, 'userlist.txt'),
    lastGoodIni: path.join(d, 'pgbouncer.ini.last-good'),
    logFile: path.join(d, 'pgbouncer.log'),
    pidFile: path.join(d, 'pgbouncer.pid'),
  };
}

export interface PgBouncerSettings {
  listenHost: string;
  listenPort: number;
  serverHost: string;
  serverPort: number;
  /** The only user allowed on the admin console (database `pgbouncer`). */
  adminUser: string;
  /** The login auth_query runs as (in every tenant database). */
  authUser: string;
  /** What PgBouncer runs, as authUser, to get a client's SCRAM verifier. */
  authQuery: string;
  /** Seconds before an idle server connection is closed, giving the slot back to the tenant's quota. */
  serverIdleTimeout: number;
  defaultPoolMode: PoolMode;
  files: PgBouncerFiles;
}

/** Where this machine reaches the listener (a wildcard listen address means loopback). */
export function localAddress({ listenHost, listenPort }: PgBouncerSettings): { host: string; port: number } {
  return { host: ['0.0.0.0', '::', '*'].includes(listenHost) ? '127.0.0.1' : listenHost, port: listenPort };
}

/** The admin console's pseudo-database: no tenant pool may take its name. */
export const ADMIN_DATABASE = 'pgbouncer';

/** Unquoted PostgreSQL-identifier-like names, at most 63 bytes (PostgreSQL's limit). */
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const HOST = /^[A-Za-z0-9._:*-]{1,253}$/;
/** Paths: no control characters, quotes or comment markers, no surrounding blanks. */
const PATH = /^[^\s;#"'\x00-\x1f\x7f](?:[^;#"'\x00-\x1f\x7f]*[^\s;#"'\x00-\x1f\x7f])?$/;
const MODES: readonly PoolMode[] = ['session', 'transaction'];
const MAX_SIZE = 100_000;
export const MAX_CLIENT_CONN = 1_000_000;
/** One line of SQL: no newline, comment marker or ini quoting. */
const AUTH_QUERY = /^[A-Za-z0-9_ .,()$]{1,400}$/;

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 && n <= MAX_SIZE;
}

export function isSafeName(s: unknown): s is string {
  return typeof s === 'string' && NAME.test(s);
}

/** Every problem with these pools, as readable lines; empty when they can be rendered. */
export function poolSpecProblems(pools: readonly PoolSpec[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [i, p] of pools.entries()) {
    const label = isSafeName(p.name) ? `pool "${p.name}"` : `pool #${i}`;
    if (!isSafeName(p.name)) problems.push(`${label}: name ${JSON.stringify(p.name)} must match ${NAME}`);
    else if (p.name === ADMIN_DATABASE) problems.push(`${label}: "${ADMIN_DATABASE}" is the admin console`);
    else if (seen.has(p.name)) problems.push(`${label}: duplicate name`);
    else seen.add(p.name);
    if (!isSafeName(p.database)) problems.push(`${label}: database ${JSON.stringify(p.database)} must match ${NAME}`);
    if (!isSafeName(p.user)) problems.push(`${label}: user ${JSON.stringify(p.user)} must match ${NAME}`);
    if (!isCount(p.poolSize)) problems.push(`${label}: poolSize must be an integer from 1 to ${MAX_SIZE}`);
    if (!isCount(p.maxDbConnections)) problems.push(`${label}: maxDbConnections must be an integer from 1 to ${MAX_SIZE}`);
    if (!MODES.includes(p.mode)) problems.push(`${label}: mode must be one of ${MODES.join(', ')}`);
    if (p.serverHost !== undefined && (!HOST.test(p.serverHost) || p.serverHost.includes('*'))) problems.push(`${label}: serverHost ${JSON.stringify(p.serverHost)} is not a plain host`);
    if (p.serverPort !== undefined && !(Number.isInteger(p.serverPort) && p.serverPort >= 1 && p.serverPort <= 65535)) problems.push(`${label}: serverPort ${p.serverPort} is not a port`);
  }
  return problems;
}

function settingsProblems(s: PgBouncerSettings): string[] {
  const problems: string[] = [];
  const port = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (!HOST.test(s.listenHost)) problems.push(`listenHost ${JSON.stringify(s.listenHost)} is not a plain host`);
  if (!HOST.test(s.serverHost) || s.serverHost.includes('*')) problems.push(`serverHost ${JSON.stringify(s.serverHost)} is not a plain host`);
  if (!port(s.listenPort)) problems.push(`listenPort ${s.listenPort} is not a port`);
  if (!port(s.serverPort)) problems.push(`serverPort ${s.serverPort} is not a port`);
  if (!isSafeName(s.adminUser)) problems.push(`adminUser ${JSON.stringify(s.adminUser)} must match ${NAME}`);
  if (!isSafeName(s.authUser)) problems.push(`authUser ${JSON.stringify(s.authUser)} must match ${NAME}`);
  if (s.authUser === s.adminUser) problems.push('authUser and adminUser must differ');
  if (!AUTH_QUERY.test(s.authQuery)) problems.push(`authQuery ${JSON.stringify(s.authQuery)} has characters the ini format cannot hold`);
  if (!isCount(s.serverIdleTimeout)) problems.push(`serverIdleTimeout must be an integer from 1 to ${MAX_SIZE}`);
  if (!MODES.includes(s.defaultPoolMode)) problems.push(`defaultPoolMode must be one of ${MODES.join(', ')}`);
  for (const key of ['authFile', 'logFile', 'pidFile'] as const) {
    if (!PATH.test(s.files[key])) problems.push(`${key} ${JSON.stringify(s.files[key])} has characters the ini format cannot hold`);
  }
  return problems;
}

/**
 * Server connections a database allows beyond the tenant's pool: auth_query runs on a
 * connection of auth_user's own in the same database, and it counts against
 * max_db_connections. Without this slot, a tenant whose pool is full could not even log
 * in a new client until a server connection freed up. The tenant's own pool stays capped
 * at pool_size (its quota); PostgreSQL still caps its role at the quota, and the lookup
 * connection takes one of the database's CONNECTION_RESERVE slots.
 */
export const AUTH_QUERY_SLOTS = 1;

/**
 * One `[databases]` line, pointing at the tenant's cluster (the default server when the spec
 * names none); no `user=`, so each client logs in to the server as itself.
 * auth_user is set here, per tenant pool, never globally: a global one also applies to
 * the admin console, where a login that is not in the auth file (a tenant's) then waits
 * for an auth_query that has no server to run on, and hangs instead of being refused.
 */
function databaseLine(settings: PgBouncerSettings, p: PoolSpec): string {
  const maxDb = p.maxDbConnections + AUTH_QUERY_SLOTS;
  return `${p.name} = host=${p.serverHost ?? settings.serverHost} port=${p.serverPort ?? settings.serverPort} dbname=${p.database} auth_user=${settings.authUser} pool_size=${p.poolSize} max_db_connections=${maxDb} pool_mode=${p.mode}`;
}

/** The whole pgbouncer.ini, rendered at once; validated first (PoolerConfigError listing every problem). */
export function renderPgBouncerIni(settings: PgBouncerSettings, pools: readonly PoolSpec[], maxClientConn: number): string {
  return new IniRenderer().render(settings, pools, maxClientConn);
}

/** Everything that makes a pool's line: a changed key means a changed line. */
const lineKey = (p: PoolSpec) => `${p.name}\u0000${p.database}\u0000${p.user}\u0000${p.poolSize}\u0000${p.maxDbConnections}\u0000${p.mode}\u0000${p.serverHost ?? ''}\u0000${p.serverPort ?? ''}`;

/**
 * Renders pgbouncer.ini apply after apply, keeping each pool's line: only pools that are new or
 * changed since the last render are validated and rendered again, and the lines are sorted
 * again only when pools come or go. A quota change so costs one line, not the fleet (the file
 * is still written whole: PgBouncer reads one file). Same output as rendering from scratch.
 */
export class IniRenderer {
  private lines = new Map<string, { key: string; line: string }>();
  private sortedNames: string[] = [];
  /** The settings a line depends on (a pool without its own server takes the default). */
  private settingsKey = '';

  render(settings: PgBouncerSettings, pools: readonly PoolSpec[], maxClientConn: number): string {
    const settingsKey = `${settings.serverHost}\u0000${settings.serverPort}\u0000${settings.authUser}`;
    if (settingsKey !== this.settingsKey) {
      this.lines = new Map();
      this.sortedNames = [];
      this.settingsKey = settingsKey;
    }
    const problems = settingsProblems(settings);
    if (!Number.isSafeInteger(maxClientConn) || maxClientConn < 1 || maxClientConn > MAX_CLIENT_CONN) problems.push(`maxClientConn must be an integer from 1 to ${MAX_CLIENT_CONN}`);
    const next = new Map<string, { key: string; line: string }>();
    const fresh: PoolSpec[] = [];
    let duplicate = false;
    for (const p of pools) {
      const key = lineKey(p);
      const cached = this.lines.get(p.name);
      if (next.has(p.name)) duplicate = true;
      if (cached && cached.key === key && !duplicate) next.set(p.name, cached);
      else {
        fresh.push(p);
        next.set(p.name, { key, line: '' });
      }
    }
    // Changed pools are checked alone; a duplicate name (or a fresh one) needs the whole set's check.
    problems.push(...poolSpecProblems(duplicate ? pools : fresh));
    if (problems.length > 0) throw new PoolerConfigError(`invalid PgBouncer configuration: ${problems.join('; ')}`);
    for (const p of fresh) next.get(p.name)!.line = databaseLine(settings, p);
    const sameNames = next.size === this.lines.size && this.sortedNames.every((n) => next.has(n));
    const sorted = sameNames ? this.sortedNames : [...next.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const text = renderIni(settings, maxClientConn, sorted.map((n) => next.get(n)!.line));
    this.lines = next;
    this.sortedNames = sorted;
    return text;
  }
}

function renderIni(settings: PgBouncerSettings, maxClientConn: number, databaseLines: string[]): string {
  return [
    ';; Written by Tenantry; edits are overwritten on the next apply.',
    // Global settings first: PgBouncer 1.18 stops reading at the first bad line and keeps
    // what it read so far, so settings after a broken [databases] line would be skipped.
    '[pgbouncer]',
    `listen_addr = ${settings.listenHost}`,
    `listen_port = ${settings.listenPort}`,
    // No Unix socket: nothing shared with other PgBouncers or the server's socket folder.
    'unix_socket_dir =',
    // SCRAM from clients is what lets PgBouncer log in to the server with the verifier
    // auth_query returned (pass-through). The auth file holds only the admin console's
    // user and auth_user; every tenant is looked up in its own database (1.18 has no
    // auth_dbname), so a rotated password works at the next login. auth_user is on each
    // pool's line (databaseLine), so the admin console knows only the auth file's logins.
    'auth_type = scram-sha-256',
    `auth_file = ${settings.files.authFile}`,
    `auth_query = ${settings.authQuery}`,
    `admin_users = ${settings.adminUser}`,
    `pool_mode = ${settings.defaultPoolMode}`,
    // Sized from the fleet (client-slots.ts): 1.18 cannot cap clients per tenant.
    `max_client_conn = ${maxClientConn}`,
    // Idle server connections count against the tenant's role CONNECTION LIMIT: give them
    // back soon, so direct connections can use the quota the pool no longer needs.
    `server_idle_timeout = ${settings.serverIdleTimeout}`,
    // Drivers (JDBC, older node-postgres) send these; PgBouncer refuses unknown ones.
    'ignore_startup_parameters = extra_float_digits,options',
    // Every admin-console call is a login; logged, they would fill the (unrotated) log.
    'log_connections = 0',
    'log_disconnections = 0',
    `logfile = ${settings.files.logFile}`,
    `pidfile = ${settings.files.pidFile}`,
    '',
    '[databases]',
    ...databaseLines,
    '',
  ].join('\n');
}
