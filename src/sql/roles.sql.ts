import format from 'pg-format';

export const roleExists = `SELECT rolname, rolsuper, rolconnlimit FROM pg_roles WHERE rolname = $1`;

/** A login role that is never a superuser: PostgreSQL does not apply connection limits to superusers. */
export const createTenantRole = (role: string, connectionLimit: number) =>
  format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %s', role, connectionLimit);

/** The password arrives as a SCRAM verifier: the plaintext never reaches the server or its logs. */
export const setRolePassword = (role: string, scramVerifier: string) =>
  format('ALTER ROLE %I WITH PASSWORD %L', role, scramVerifier);

export const disableLogin = (role: string) => format('ALTER ROLE %I WITH NOLOGIN', role);

export const dropRole = (role: string) => format('DROP ROLE IF EXISTS %I', role);

export const setRoleConnectionLimit = (role: string, limit: number) => format('ALTER ROLE %I WITH CONNECTION LIMIT %s', role, limit);

export const enableLogin = (role: string) => format('ALTER ROLE %I WITH LOGIN', role);
