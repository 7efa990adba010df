/** Ends every session of a role (any database) or in a database, except our own. */
export const terminateBackendsOf = `SELECT count(pg_terminate_backend(pid))::int AS terminated
  FROM pg_stat_activity
  WHERE (usename = $1 OR datname = $2) AND pid <> pg_backend_pid()`;
