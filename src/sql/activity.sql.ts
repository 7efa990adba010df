/** Client sessions per role and state, for the given roles, in one pass over pg_stat_activity. */
export const sessionsByRoleAndState = `SELECT usename AS role, coalesce(state, 'unknown') AS state, count(*)::int AS n
  FROM pg_stat_activity
  WHERE backend_type = 'client backend' AND usename = ANY($1::text[])
  GROUP BY usename, state`;
