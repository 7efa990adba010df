import format from 'pg-format';

/**
 * A login role that may only read: no inheriting (whatever the tenant grants it as a role stays
 * behind SET ROLE), its own connection limit, and a VALID UNTIL after which PostgreSQL refuses its password.
 */
export const createReadOnlyRole = (role: string, scramVerifier: string, validUntil: Date, connectionLimit: number) =>
  format(
    'CREATE ROLE %I WITH LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %s PASSWORD %L VALID UNTIL %L',
    role,
    connectionLimit,
    scramVerifier,
    validUntil.toISOString(),
  );

/** CONNECT only (no TEMPORARY); the control plane owns the database. */
export const grantConnect = (database: string, role: string) => format('GRANT CONNECT ON DATABASE %I TO %I', database, role);

export const revokeDatabase = (database: string, role: string) => format('REVOKE ALL ON DATABASE %I FROM %I', database, role);

/** The tenant's schema (public belongs to pg_database_owner, that is the control plane). */
export const grantSchemaUsage = (role: string) => format('GRANT USAGE ON SCHEMA public TO %I', role);

export const revokeSchemaUsage = (role: string) => format('REVOKE ALL ON SCHEMA public FROM %I', role);

/** Run as the tenant (SET LOCAL ROLE): what it creates from now on is readable by the read-only role. */
export const grantFutureSelect = (tenantRole: string, role: string) =>
  format(
    'ALTER DEFAULT PRIVILEGES FOR ROLE %1$I IN SCHEMA public GRANT SELECT ON TABLES TO %2$I; ALTER DEFAULT PRIVILEGES FOR ROLE %1$I IN SCHEMA public GRANT SELECT ON SEQUENCES TO %2$I',
    tenantRole,
    role,
  );

export const revokeFutureSelect = (tenantRole: string, role: string) =>
  format(
    'ALTER DEFAULT PRIVILEGES FOR ROLE %1$I IN SCHEMA public REVOKE ALL ON TABLES FROM %2$I; ALTER DEFAULT PRIVILEGES FOR ROLE %1$I IN SCHEMA public REVOKE ALL ON SEQUENCES FROM %2$I',
    tenantRole,
    role,
  );

/**
 * Relations the tenant ($1) owns outside the system's and the extensions' schemas: `sequence`
 * true for sequences. With $2, only those on which that role holds a privilege (to revoke).
 */
export const tenantRelations = `SELECT n.nspname AS schema, c.relname AS name, c.relkind = 'S' AS sequence
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
    AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'extensions']) AND n.nspname !~ '^pg_'
    AND ($2::pg_catalog.text IS NULL OR EXISTS (
      SELECT 1 FROM pg_catalog.aclexplode(c.relacl) a WHERE a.grantee = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2)))`;

type Relation = { schema: string; name: string; sequence: boolean };

function onRelations(verb: 'GRANT SELECT' | 'REVOKE ALL', preposition: 'TO' | 'FROM', relations: Relation[], role: string): string[] {
  const statements: string[] = [];
  for (const sequence of [false, true]) {
    const names = relations.filter((r) => r.sequence === sequence).map((r) => format('%I.%I', r.schema, r.name));
    if (names.length) statements.push(format(`${verb} ON ${sequence ? 'SEQUENCE' : 'TABLE'} %s ${preposition} %I`, names.join(', '), role));
  }
  return statements;
}

export const grantSelectOn = (relations: Relation[], role: string) => onRelations('GRANT SELECT', 'TO', relations, role);
export const revokeAllOn = (relations: Relation[], role: string) => onRelations('REVOKE ALL', 'FROM', relations, role);

/** SET LOCAL ROLE: the rest of the transaction runs with the tenant's rights, never ours. */
export const actAs = (role: string) => format('SET LOCAL ROLE %I', role);

export const roleExists = 'SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1';

export const databaseExists = 'SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1';

export const disableLogin = (role: string) => format('ALTER ROLE %I WITH NOLOGIN', role);

export const dropRole = (role: string) => format('DROP ROLE IF EXISTS %I', role);

/** Ends every session of a role, on any database. */
export const terminateSessionsOf = `SELECT count(pg_catalog.pg_terminate_backend(pid))::pg_catalog.int4 AS terminated
  FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND pid <> pg_catalog.pg_backend_pid()`;
