import { SESSION_TENANT_ROLE } from './names.js';

/** Ends every session of a role (any database) or in a database, except our own. */
export const terminateBackendsOf = `SELECT count(pg_catalog.pg_terminate_backend(pid))::pg_catalog.int4 AS terminated
  FROM pg_catalog.pg_stat_activity
  WHERE (usename = $1 OR datname = $2) AND pid <> pg_catalog.pg_backend_pid()`;

/**
 * How many sessions a tenant's role and its read-only roles (`<role>.ro.<hex>`) hold right now:
 * all of them count against the database's CONNECTION LIMIT, the quota.
 */
export const countBackendsOf = `SELECT count(*)::pg_catalog.int4 AS n FROM pg_catalog.pg_stat_activity
  WHERE ${SESSION_TENANT_ROLE} = $1 AND backend_type = 'client backend'`;

/** Ends the newest `$2` sessions of a tenant's role and its read-only roles; returns their pids. */
export const terminateNewestBackendsOf = `SELECT pid, pg_catalog.pg_terminate_backend(pid) AS terminated
  FROM (SELECT pid FROM pg_catalog.pg_stat_activity
        WHERE ${SESSION_TENANT_ROLE} = $1 AND backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid()
        ORDER BY backend_start DESC LIMIT $2) newest`;

/** One backend, only if it is a session of the tenant's role or of one of its read-only roles (`<role>.ro.<hex>`). */
export const tenantBackend = `SELECT pid FROM pg_catalog.pg_stat_activity
  WHERE pid = $1 AND backend_type = 'client backend' AND ${SESSION_TENANT_ROLE} = $2`;

export const terminateBackend = `SELECT pg_catalog.pg_terminate_backend($1) AS terminated`;
