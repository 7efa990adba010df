// PgBouncer's auth_file (userlist.txt): two logins only, never a tenant's. The admin
// console's user (a SCRAM verifier of a password kept in memory) and the auth user
// (plaintext: PgBouncer logs in to PostgreSQL as it to run auth_query, and needs the
// password itself for that). Tenants are looked up through auth_query (pooler-auth.ts).
import { generatePassword, scramSha256Verifier } from '../../tenants/index.js';
import { PoolerConfigError } from '../pooler-driver.js';
import { isSafeName } from './pgbouncer-config.js';

/** A login whose plaintext lives only in memory (and, for the auth user, in the 0600 auth file). */
export interface Credentials {
  readonly user: string;
  readonly password: string;
}

/** The admin-console login. The plaintext lives only in this object, never on disk. */
export interface AdminCredentials extends Credentials {
  readonly verifier: string;
}

export function generateAdminCredentials(): AdminCredentials {
  const password = generatePassword();
  return { user: 'tenantry_pgbouncer_admin', password, verifier: scramSha256Verifier(password) };
}

/** RFC 5803 form, as in pg_authid.rolpassword. Strict, so nothing else can ride into the file. */
const SCRAM_VERIFIER = /^SCRAM-SHA-256\$[1-9][0-9]{0,9}:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$/;
/** What generatePassword() makes (base64url): no quote, blank or newline can reach the file. */
const PLAIN_PASSWORD = /^[A-Za-z0-9_-]{16,128}$/;

/** `"user" "secret"` lines: the admin console's user, then the auth user. */
export function renderAuthFile(admin: AdminCredentials, authUser: Credentials): string {
  if (authUser.user === admin.user) throw new PoolerConfigError(`role "${admin.user}" is the pooler's admin user`);
  if (!isSafeName(admin.user)) throw new PoolerConfigError(`auth file: unsafe user name ${JSON.stringify(admin.user)}`);
  if (!SCRAM_VERIFIER.test(admin.verifier)) throw new PoolerConfigError(`auth file: "${admin.user}" has no SCRAM-SHA-256 verifier`);
  if (!isSafeName(authUser.user)) throw new PoolerConfigError(`auth file: unsafe user name ${JSON.stringify(authUser.user)}`);
  if (!PLAIN_PASSWORD.test(authUser.password)) throw new PoolerConfigError(`auth file: the password of "${authUser.user}" has characters the file cannot hold`);
  return `"${admin.user}" "${admin.verifier}"\n"${authUser.user}" "${authUser.password}"\n`;
}
