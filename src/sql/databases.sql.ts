import format from 'pg-format';

export const databaseExists = `SELECT datname, datistemplate, datallowconn, datconnlimit, pg_get_userbyid(datdba) AS owner
  FROM pg_database WHERE datname = $1`;

export const createDatabaseFromTemplate = (database: string, owner: string, template: string, connectionLimit: number) =>
  format('CREATE DATABASE %I WITH OWNER %I TEMPLATE %I CONNECTION LIMIT %s', database, owner, template, connectionLimit);

export const createEmptyDatabase = (database: string) => format('CREATE DATABASE %I WITH TEMPLATE template0', database);

/** A prepared template: copyable, and nobody may connect to it. */
export const sealTemplateDatabase = (database: string) =>
  format('ALTER DATABASE %I WITH IS_TEMPLATE true ALLOW_CONNECTIONS false', database);

/** A database must stop being a template before it can be dropped. */
export const unsealTemplateDatabase = (database: string) => format('ALTER DATABASE %I WITH IS_TEMPLATE false', database);

export const revokeConnectFromPublic = (database: string) => format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', database);

export const grantConnect = (database: string, role: string) => format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', database, role);

/** WITH (FORCE) terminates remaining sessions (PostgreSQL 13+). */
export const dropDatabase = (database: string) => format('DROP DATABASE IF EXISTS %I WITH (FORCE)', database);

/**
 * Inside a new tenant database: the template's tables belong to whoever prepared the
 * template; hand them (with their sequences and indexes) to the tenant role, except the
 * version table, which stays the control plane's and is readable by the tenant.
 */
export const handTablesToTenant = (role: string) => format(
  `DO $$
   DECLARE r record;
   BEGIN
     FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND c.relname <> '__SchemaVersion'
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
     LOOP
       EXECUTE format('ALTER TABLE public.%%I OWNER TO %%I', r.relname, %L);
     END LOOP;
   END $$`,
  role,
);

export const grantSchemaVersionRead = (role: string) => format('GRANT SELECT ON public."__SchemaVersion" TO %I', role);

export const setDatabaseOwner = (database: string, owner: string) => format('ALTER DATABASE %I OWNER TO %I', database, owner);

export const setDatabaseConnectionLimit = (database: string, limit: number) => format('ALTER DATABASE %I WITH CONNECTION LIMIT %s', database, limit);
