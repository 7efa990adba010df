/** reserved_connections exists from PostgreSQL 16; current_setting(..., true) is NULL before. */
export const serverFacts = `SELECT pg_catalog.current_setting('server_version') AS server_version,
  pg_catalog.current_setting('server_version_num')::pg_catalog.int4 AS server_version_num,
  pg_catalog.current_setting('max_connections')::pg_catalog.int4 AS max_connections,
  pg_catalog.current_setting('superuser_reserved_connections')::pg_catalog.int4 AS superuser_reserved_connections,
  coalesce(pg_catalog.current_setting('reserved_connections', true)::pg_catalog.int4, 0) AS reserved_connections`;
