import format from 'pg-format';
import { EXTENSION_SCHEMA } from './extension-schema.sql.js';

export const databaseExists = `SELECT datname, datistemplate, datallowconn, datconnlimit, pg_catalog.pg_get_userbyid(datdba) AS owner,
    datdba = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER) AS owned_by_us
  FROM pg_catalog.pg_database WHERE datname = $1`;

/**
 * A tenant database is owned by the control plane, not by the tenant: the tenant cannot
 * ALTER DATABASE it (settings, IS_TEMPLATE, CONNECTION LIMIT), cannot create schemas or
 * extensions in it, and cannot drop or replace what the control plane keeps there.
 */
export const createDatabaseFromTemplate = (database: string, template: string, connectionLimit: number, strategy: 'wal_log' | 'file_copy' | null) =>
  format('CREATE DATABASE %I WITH TEMPLATE %I CONNECTION LIMIT %s', database, template, connectionLimit) + (strategy ? format(' STRATEGY %s', strategy.toUpperCase()) : '');

/** Names in a tenant's sessions resolve in its own schema, then public, then the extensions. */
export const setTenantSearchPath = (database: string) =>
  format(`ALTER DATABASE %I SET search_path = "$user", public, %I`, database, EXTENSION_SCHEMA);

/** Drops every database-level setting (a legacy tenant, which owned its database, could have set any). */
export const resetDatabaseSettings = (database: string) => format('ALTER DATABASE %I RESET ALL', database);

export const createEmptyDatabase = (database: string) => format('CREATE DATABASE %I WITH TEMPLATE template0', database);

/** A prepared template: copyable, and nobody may connect to it. */
export const sealTemplateDatabase = (database: string) =>
  format('ALTER DATABASE %I WITH IS_TEMPLATE true ALLOW_CONNECTIONS false', database);

/** A database must stop being a template before it can be dropped. */
export const unsealTemplateDatabase = (database: string) => format('ALTER DATABASE %I WITH IS_TEMPLATE false', database);

/** A tenant database as it must be: not a template, open to connections, with its limit. */
export const normaliseTenantDatabase = (database: string, connectionLimit: number) =>
  format('ALTER DATABASE %I WITH IS_TEMPLATE false ALLOW_CONNECTIONS true CONNECTION LIMIT %s', database, connectionLimit);

export const revokeConnectFromPublic = (database: string) => format('REVOKE ALL ON DATABASE %I FROM PUBLIC', database);

/** CONNECT and TEMPORARY: no CREATE on the database (no schemas, no extensions of its own). */
export const grantTenantDatabaseAccess = (database: string, role: string) =>
  format('REVOKE ALL ON DATABASE %I FROM %I; GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', database, role, database, role);

/** WITH (FORCE) terminates remaining sessions (PostgreSQL 13+). */
export const dropDatabase = (database: string) => format('DROP DATABASE IF EXISTS %I WITH (FORCE)', database);

export const setDatabaseOwnerToUs = (database: string) => format('ALTER DATABASE %I OWNER TO CURRENT_USER', database);

export const setDatabaseConnectionLimit = (database: string, limit: number) => format('ALTER DATABASE %I WITH CONNECTION LIMIT %s', database, limit);

/**
 * Inside a new tenant database (a fresh copy of the template, which the tenant has never
 * logged in to): its role may create objects in `public` and owns the template's tables
 * (with their sequences and indexes); `__SchemaVersion` stays the control plane's.
 */
export const handTablesToTenant = (role: string) => format(
  `GRANT USAGE, CREATE ON SCHEMA public TO %1$I;
   DO $$
   DECLARE r record;
   BEGIN
     FOR r IN SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND c.relname <> '__SchemaVersion'
                AND c.relowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER)
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
     LOOP
       EXECUTE pg_catalog.format('ALTER TABLE public.%%I OWNER TO %%I', r.relname, %1$L);
     END LOOP;
   END $$`,
  role,
);
