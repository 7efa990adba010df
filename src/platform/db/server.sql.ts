/** reserved_connections exists from PostgreSQL 16; current_setting(..., true) is NULL before. Columns as in ServerFacts. */
export const serverFacts = `SELECT pg_catalog.current_setting('server_version') AS "serverVersion",
  pg_catalog.current_setting('server_version_num')::pg_catalog.int4 AS "serverVersionNum",
  pg_catalog.current_setting('max_connections')::pg_catalog.int4 AS "maxConnections",
  pg_catalog.current_setting('superuser_reserved_connections')::pg_catalog.int4 AS "superuserReservedConnections",
  coalesce(pg_catalog.current_setting('reserved_connections', true)::pg_catalog.int4, 0) AS "reservedConnections",
  pg_catalog.current_setting('wal_level') AS "walLevel",
  pg_catalog.current_setting('max_replication_slots')::pg_catalog.int4 AS "maxReplicationSlots",
  (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots)::pg_catalog.int4 AS "replicationSlotsUsed",
  pg_catalog.current_setting('max_wal_senders')::pg_catalog.int4 AS "maxWalSenders"`;
