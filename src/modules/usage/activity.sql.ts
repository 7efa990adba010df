import { SESSION_TENANT_ROLE } from '../tenants/index.js';

/**
 * Every client session on the server, in one pass over pg_stat_activity: what the usage
 * sampler reads once per interval for all tenants of a cluster (and the cluster total).
 */
export const tenantSessions = `SELECT usename AS role, pid, coalesce(state, 'unknown') AS state, application_name,
    backend_start, query_start, pg_catalog.left(query, 4000) AS query,
    extract(epoch FROM (pg_catalog.now() - coalesce(query_start, backend_start)))::pg_catalog.float8 AS duration_seconds
  FROM pg_catalog.pg_stat_activity
  WHERE backend_type = 'client backend'`;

/**
 * The sessions of several tenants' roles (a page of tenants) and of their read-only roles
 * (`<role>.ro.<hex>`), oldest first: one read for all of them.
 */
export const sessionsOfRoles = `${tenantSessions} AND ${SESSION_TENANT_ROLE} = ANY($1::text[]) ORDER BY backend_start`;
