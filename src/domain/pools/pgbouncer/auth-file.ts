// PgBouncer's auth_file (userlist.txt) without plaintext passwords. Each tenant role gets
// the SCRAM-SHA-256 verifier the server itself stores: PgBouncer checks the client's SCRAM
// proof against it and, because the secret is identical (same salt and iterations), reuses
// the client's proof to log in to the server as that role ("SCRAM pass-through").
import { generatePassword, scramSha256Verifier } from '../../tenants/credentials.js';
import { PoolerConfigError } from '../pooler-driver.js';
import { isSafeName } from './pgbouncer-config.js';

/** The admin-console login. The plaintext lives only in this object, never on disk. */
export interface AdminCredentials {
  readonly user: string;
  readonly password: string;
  /** What goes into the auth file. */
  readonly verifier: string;
}

export function generateAdminCredentials(user = 'tenantry_pooler'): AdminCredentials {
  const password = generatePassword();
  return { user, password, verifier: scramSha256Verifier(password) };
}

/** Anything with node-postgres' query shape: a pg.Pool, pg.Client or ClusterAdmin. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** RFC 5803 form, as in pg_authid.rolpassword. Strict, so nothing else can ride into the file. */
const SCRAM_VERIFIER = /^SCRAM-SHA-256\$[1-9][0-9]{0,9}:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$/;

/**
 * The stored SCRAM verifier of each role, read by a superuser (pg_authid is superuser-only).
 * A role that is missing, or has no SCRAM password (none, or md5), cannot log in through
 * PgBouncer: PoolerConfigError names them all.
 */
export async function readScramVerifiers(superuser: Queryable, roles: readonly string[]): Promise<Map<string, string>> {
  const wanted = [...new Set(roles)];
  const { rows } = await superuser.query('SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1)', [wanted]);
  const found = new Map<string, string | null>();
  for (const row of rows as { rolname: string; rolpassword: string | null }[]) found.set(row.rolname, row.rolpassword);

  const verifiers = new Map<string, string>();
  const problems: string[] = [];
  for (const role of wanted) {
    const secret = found.get(role);
    if (secret === undefined) problems.push(`role "${role}" does not exist`);
    else if (secret === null || !SCRAM_VERIFIER.test(secret)) problems.push(`role "${role}" has no SCRAM-SHA-256 password`);
    else verifiers.set(role, secret);
  }
  if (problems.length > 0) throw new PoolerConfigError(`cannot authenticate through PgBouncer: ${problems.join('; ')}`);
  return verifiers;
}

/** `"user" "secret"` lines: the admin user first, then the roles in name order. */
export function renderAuthFile(admin: AdminCredentials, verifiers: ReadonlyMap<string, string>): string {
  if (verifiers.has(admin.user)) throw new PoolerConfigError(`role "${admin.user}" is the pooler's admin user`);
  const entries: [string, string][] = [[admin.user, admin.verifier], ...[...verifiers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))];
  for (const [user, secret] of entries) {
    // Both are checked, so no quote or newline can reach the file and no escaping is needed.
    if (!isSafeName(user)) throw new PoolerConfigError(`auth file: unsafe user name ${JSON.stringify(user)}`);
    if (!SCRAM_VERIFIER.test(secret)) throw new PoolerConfigError(`auth file: "${user}" has no SCRAM-SHA-256 verifier`);
  }
  return entries.map(([user, secret]) => `"${user}" "${secret}"\n`).join('');
}
