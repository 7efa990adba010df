// PgBouncer's auth_query, server side: a SECURITY DEFINER lookup function in every tenant
// database (PgBouncer 1.18 runs auth_query in the database the client asked for; 1.20's
// auth_dbname would allow one), owned by a NOLOGIN role that reads pg_authid through
// pg_read_all_data, executable only by the pooler's login role.
import format from 'pg-format';

export const LOOKUP_SCHEMA = 'tenantry';

/** What PgBouncer runs, as its auth_user, inside the tenant database. */
export const AUTH_QUERY = `SELECT username, password FROM ${LOOKUP_SCHEMA}.pgbouncer_lookup($1)`;

/** The roles the lookup needs, as seen by the control plane's role. */
export const poolerRoleFacts = `SELECT
    (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) AS am_superuser,
    pg_catalog.current_setting('server_version_num')::int AS version_num,
    (SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1) IS NOT NULL AS lookup_exists,
    (SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1) AS lookup_can_login,
    EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
              JOIN pg_catalog.pg_roles g ON g.oid OPERATOR(pg_catalog.=) m.roleid
              JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) m.member
             WHERE g.rolname OPERATOR(pg_catalog.=) 'pg_read_all_data' AND r.rolname OPERATOR(pg_catalog.=) $1) AS lookup_reads_all,
    (SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $2) IS NOT NULL AS auth_user_exists`;

/** Can the current role act as the lookup role (create objects it owns)? 'SET' exists from PostgreSQL 16. */
export const canActAs = (versionNum: number) =>
  `SELECT pg_catalog.pg_has_role(current_user, $1, '${versionNum >= 160000 ? 'SET' : 'MEMBER'}') AS ok`;

export const createLookupRole = (role: string) =>
  format('CREATE ROLE %I WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', role);

export const grantReadAllData = (role: string) => format('GRANT pg_read_all_data TO %I', role);

/** The pooler's own login: nothing but LOGIN; the password arrives as a SCRAM verifier. */
export const createAuthUser = (role: string, scramVerifier: string) =>
  format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD %L', role, scramVerifier);

export const setAuthUserPassword = (role: string, scramVerifier: string) =>
  format('ALTER ROLE %I WITH LOGIN PASSWORD %L', role, scramVerifier);

/** The one grant a new tenant database needs for pooled logins. */
export const grantPoolerConnect = (database: string, authUser: string) => format('GRANT CONNECT ON DATABASE %I TO %I', database, authUser);

/** Which of these databases the auth user cannot enter yet (tenants older than auth_query, or POOLER=none before). */
export const databasesWithoutPoolerAccess = `SELECT d.datname FROM pg_catalog.pg_database d
  WHERE d.datname OPERATOR(pg_catalog.=) ANY($1::text[])
    AND NOT pg_catalog.has_database_privilege($2, d.oid, 'CONNECT')`;

/** Bumped when the function's body changes, so installed copies are replaced. */
export const LOOKUP_VERSION = 'tenantry pgbouncer lookup v1';

/**
 * Inside one database: who owns the schema and the function, its version, and whether the
 * auth user ($1) may run it. By catalog joins, not by name: resolving a name would need
 * USAGE on the schema, which a control plane that may only SET ROLE to the owner lacks.
 */
export const lookupState = `SELECT pg_catalog.pg_get_userbyid(n.nspowner) AS schema_owner,
       pg_catalog.pg_get_userbyid(p.proowner) AS function_owner,
       pg_catalog.obj_description(p.oid, 'pg_proc') AS version,
       COALESCE(pg_catalog.has_schema_privilege($1, n.oid, 'USAGE')
                AND pg_catalog.has_function_privilege($1, p.oid, 'EXECUTE'), false) AS executable
  FROM (SELECT 1) x
  LEFT JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) '${LOOKUP_SCHEMA}'
  LEFT JOIN pg_catalog.pg_proc p ON p.pronamespace OPERATOR(pg_catalog.=) n.oid
        AND p.proname OPERATOR(pg_catalog.=) 'pgbouncer_lookup'
        AND p.proargtypes OPERATOR(pg_catalog.=) '25'::pg_catalog.oidvector`;

/**
 * The statements that install the lookup function into the current database, in order,
 * inside one transaction. Everything after the schema is done as the lookup role itself
 * (SET LOCAL ROLE), so the function is born owned by it: a control plane that may only
 * SET ROLE to it (PostgreSQL 16+: INHERIT FALSE) can still install it.
 *
 * The function returns a role's verifier only when the role may log in, is not a
 * superuser, holds no role-management or replication attribute, does not own this
 * database, and holds CONNECT on it: the pooler can never hand out a privileged login,
 * nor one that belongs to another tenant's database. Everything is schema-qualified and
 * the search_path is pinned, so nothing a tenant creates can stand in for a catalog.
 */
export function installLookupStatements(lookupRole: string, authUser: string): string[] {
  return [
    format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', LOOKUP_SCHEMA, lookupRole),
    format('SET LOCAL ROLE %I', lookupRole),
    format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', LOOKUP_SCHEMA),
    format(
      `CREATE OR REPLACE FUNCTION %I.pgbouncer_lookup(p_username text)
         RETURNS TABLE (username text, password text)
         LANGUAGE sql STABLE SECURITY DEFINER
         SET search_path = pg_catalog, pg_temp
       AS $fn$
         SELECT a.rolname::pg_catalog.text, a.rolpassword::pg_catalog.text
           FROM pg_catalog.pg_authid a
          WHERE a.rolname OPERATOR(pg_catalog.=) p_username
            AND a.rolcanlogin
            AND NOT a.rolsuper
            AND NOT a.rolcreaterole
            AND NOT a.rolcreatedb
            AND NOT a.rolreplication
            AND NOT a.rolbypassrls
            AND a.oid OPERATOR(pg_catalog.<>) (SELECT d.datdba FROM pg_catalog.pg_database d
                                                 WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
            AND pg_catalog.has_database_privilege(a.oid, pg_catalog.current_database(), 'CONNECT')
       $fn$`,
      LOOKUP_SCHEMA,
    ),
    format('COMMENT ON FUNCTION %I.pgbouncer_lookup(text) IS %L', LOOKUP_SCHEMA, LOOKUP_VERSION),
    format('REVOKE ALL ON FUNCTION %I.pgbouncer_lookup(text) FROM PUBLIC', LOOKUP_SCHEMA),
    format('GRANT USAGE ON SCHEMA %I TO %I', LOOKUP_SCHEMA, authUser),
    format('GRANT EXECUTE ON FUNCTION %I.pgbouncer_lookup(text) TO %I', LOOKUP_SCHEMA, authUser),
    'RESET ROLE',
  ];
}
