import { serverFacts } from '../../platform/db/server.sql.js';

/**
 * What registerCluster and updateCluster learn about a server before storing it: the live facts
 * (ServerFacts), which server it is (pg_control_system().system_identifier, the same for every
 * URL that leads to it) and whether it is a standby. Columns as in ServerProbe.
 */
export const probeServer = `SELECT f.*,
  (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s)::pg_catalog.text AS "systemIdentifier",
  pg_catalog.pg_is_in_recovery() AS "inRecovery"
FROM (${serverFacts}) f`;

/** The server's system identifier alone (is a new URL the same server?). */
export const systemIdentifier = `SELECT s.system_identifier::pg_catalog.text AS "systemIdentifier" FROM pg_catalog.pg_control_system() s`;

/** Which of these databases exist on the server ($1 text[]). */
export const existingDatabases = `SELECT d.datname FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) ANY($1::pg_catalog.text[])`;
