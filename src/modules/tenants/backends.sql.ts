import { SESSION_TENANT_ROLE } from './names.js';

/**
 * Client sessions the control plane may end: not its own, and not a superuser's unless it is
 * one (a least-privilege control plane asking to end one fails the whole statement). Background
 * processes (autovacuum workers, replication) are never ended: PostgreSQL 18 refuses that to
 * roles without pg_signal_autovacuum_worker, and DROP DATABASE stops them itself.
 */
const ENDABLE = `a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid()
    AND (NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = a.usesysid), false)
         OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER))`;

/** Before a database is dropped: ends every session of a role (any database) or in the database, that it may end. */
export const terminateBackendsOf = `SELECT count(pg_catalog.pg_terminate_backend(a.pid))::pg_catalog.int4 AS terminated
  FROM pg_catalog.pg_stat_activity a
  WHERE (a.usename = $1 OR a.datname = $2) AND ${ENDABLE}`;

/**
 * A suspension: ends the sessions of a tenant's role and its read-only roles ($1), wherever
 * they are; other roles' sessions in its database (an operator's, the control plane's) stay.
 */
export const terminateTenantSessions = `SELECT count(pg_catalog.pg_terminate_backend(a.pid))::pg_catalog.int4 AS terminated
  FROM pg_catalog.pg_stat_activity a
  WHERE ${SESSION_TENANT_ROLE.replace('usename', 'a.usename')} = $1 AND ${ENDABLE}`;

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
