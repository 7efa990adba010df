/** reserved_connections exists from PostgreSQL 16; current_setting(..., true) is NULL before. */
export const serverFacts = `SELECT current_setting('server_version') AS server_version,
  current_setting('server_version_num')::int AS server_version_num,
  current_setting('max_connections')::int AS max_connections,
  current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
  coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved_connections`;
