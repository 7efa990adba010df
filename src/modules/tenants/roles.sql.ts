import format from 'pg-format';
import { READ_ONLY_PREFIX_OF } from './names.js';

export const roleExists = `SELECT rolname, rolsuper, rolconnlimit, rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = $1`;

/** A login role that is never a superuser: PostgreSQL does not apply connection limits to superusers. */
export const createTenantRole = (role: string, connectionLimit: number) =>
  format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %s', role, connectionLimit);

/**
 * A control plane that is not superuser must be able to SET ROLE to the tenant's role (to
 * hand it tables, and to run template steps as it). PostgreSQL 16+ lets the member choose
 * not to inherit the tenant's privileges; 15 has no per-grant option.
 */
export const grantRoleToControlPlane = (role: string, serverVersionNum: number) =>
  serverVersionNum >= 160000 ? format('GRANT %I TO CURRENT_USER WITH INHERIT FALSE, SET TRUE', role) : format('GRANT %I TO CURRENT_USER', role);

/**
 * PostgreSQL 16+: turns inheriting the tenant role's privileges on or off for the control
 * plane's membership (which it holds WITH INHERIT FALSE). Owner-only steps on what a tenant
 * owns (taking back a legacy tenant's database) need it on for a moment.
 */
export const inheritTenantRole = (role: string, inherit: boolean) => format('GRANT %I TO CURRENT_USER WITH INHERIT %s', role, inherit ? 'TRUE' : 'FALSE');

/** Whether the current user can SET ROLE to the role ($1). The SET privilege exists from PostgreSQL 16; before, membership is what counts. */
export const canSetRole = (serverVersionNum: number) =>
  `SELECT pg_catalog.pg_has_role(CURRENT_USER, $1, '${serverVersionNum >= 160000 ? 'SET' : 'MEMBER'}') AS ok`;

/** The password arrives as a SCRAM verifier: the plaintext never reaches the server or its logs. */
export const setRolePassword = (role: string, scramVerifier: string) =>
  format('ALTER ROLE %I WITH PASSWORD %L', role, scramVerifier);

/**
 * A tenant's read-only roles ($1: its role): named `<role>.ro.<hex>` (createReadOnlyCredentials),
 * which no tenant's role can be (theirs hold no '.'). They go with the tenant: suspended, resumed, dropped.
 */
export const readOnlyRolesOf = `SELECT rolname FROM pg_catalog.pg_roles WHERE pg_catalog.starts_with(rolname, ${READ_ONLY_PREFIX_OF})`;

export const disableLogin = (role: string) => format('ALTER ROLE %I WITH NOLOGIN', role);

export const dropRole = (role: string) => format('DROP ROLE IF EXISTS %I', role);

export const setRoleConnectionLimit = (role: string, limit: number) => format('ALTER ROLE %I WITH CONNECTION LIMIT %s', role, limit);

export const enableLogin = (role: string) => format('ALTER ROLE %I WITH LOGIN', role);

/** What PostgreSQL enforces for every role and database named like a tenant: compared with the records by the reconciler. */
export const tenantLimits = `SELECT r.rolname AS name, r.rolconnlimit AS role_limit, r.rolcanlogin AS can_login, d.datconnlimit AS database_limit
  FROM pg_catalog.pg_roles r LEFT JOIN pg_catalog.pg_database d ON d.datname = r.rolname
  WHERE r.rolname = ANY($1::pg_catalog.text[])`;
