import format from 'pg-format';

// The SQL of a tenant move. Identifiers go through pg-format (%I, %L); every catalog name is
// qualified; nothing here calls a function a tenant could own (only pg_catalog's).

/**
 * Publication, subscription and slot share one name per move: `tenantry_move_<its id's 32 hex>`
 * (46 characters). The whole id: a UUIDv7's first 12 hex are its millisecond, which moves
 * started together (a drain) share, and slot names are unique per server.
 */
export const moveObjectName = (moveId: string) => `tenantry_move_${moveId.replace(/-/g, '')}`;
/**
 * What a moved tenant's source database is renamed to while retained: `<db>_moved_<the move id's
 * last 12 hex>` (its random part: tenants of a drain whose names share their first 44
 * characters, and one tenant moved away twice within the retention, stay apart).
 */
export const retainedDatabaseName = (database: string, moveId: string) => `${database.slice(0, 63 - 19)}_moved_${moveId.replace(/-/g, '').slice(-12)}`;

/** The roles a move carries: the tenant's role and its read-only roles, with what the target needs to recreate them (superuser only: pg_authid). */
export const rolesToCarry = `SELECT a.rolname, a.rolpassword, a.rolconnlimit, a.rolinherit, a.rolcanlogin, a.rolvaliduntil
  FROM pg_catalog.pg_authid a
  WHERE a.rolname = $1 OR pg_catalog.starts_with(a.rolname, $2)
  ORDER BY a.rolname`;

/** Role names only (pg_roles: readable without superuser). */
export const roleNames = `SELECT rolname, rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = $1 OR pg_catalog.starts_with(rolname, $2) ORDER BY rolname`;

export const roleExists = `SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1`;

/** A tenant role as the target gets it: never able to log in until the cutover. */
export const createCarriedRole = (r: { rolname: string; rolpassword: string | null; rolconnlimit: number; rolinherit: boolean; rolvaliduntil: Date | null }, exists: boolean) =>
  format(
    `${exists ? 'ALTER' : 'CREATE'} ROLE %I WITH NOLOGIN %s NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %s`,
    r.rolname,
    r.rolinherit ? 'INHERIT' : 'NOINHERIT',
    r.rolconnlimit,
  ) +
  (r.rolpassword ? format(' PASSWORD %L', r.rolpassword) : '') +
  (r.rolvaliduntil ? format(' VALID UNTIL %L', r.rolvaliduntil.toISOString()) : '');

export const setLogin = (role: string, login: boolean) => format('ALTER ROLE %I WITH %s', role, login ? 'LOGIN' : 'NOLOGIN');

export const dropRole = (role: string) => format('DROP ROLE IF EXISTS %I', role);

/** The source database as the target recreates it: owner, connection limit, privileges, settings. */
export const databaseFacts = `SELECT d.datname, pg_catalog.pg_get_userbyid(d.datdba) AS owner, d.datconnlimit, d.datallowconn,
    pg_catalog.pg_encoding_to_char(d.encoding) AS encoding, d.datcollate, d.datctype,
    COALESCE((SELECT pg_catalog.array_agg(pg_catalog.format('%s=%s', CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END, a.privilege_type))
              FROM pg_catalog.aclexplode(d.datacl) a), ARRAY[]::pg_catalog.text[]) AS grants,
    d.datacl IS NULL AS default_acl,
    COALESCE((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0), ARRAY[]::pg_catalog.text[]) AS settings
  FROM pg_catalog.pg_database d WHERE d.datname = $1`;

export const createDatabase = (database: string, owner: string, encoding: string, collate: string, ctype: string) =>
  format('CREATE DATABASE %I WITH OWNER %I TEMPLATE template0 ENCODING %L LC_COLLATE %L LC_CTYPE %L', database, owner, encoding, collate, ctype);

export const revokeAllFromPublic = (database: string) => format('REVOKE ALL ON DATABASE %I FROM PUBLIC', database);
export const grantOnDatabase = (database: string, privilege: string, grantee: string) =>
  grantee === 'PUBLIC' ? format('GRANT %s ON DATABASE %I TO PUBLIC', privilege, database) : format('GRANT %s ON DATABASE %I TO %I', privilege, database, grantee);
export const setDatabaseSetting = (database: string, name: string, value: string) => format('ALTER DATABASE %I SET %I = %L', database, name, value);
/** search_path is a list: each element an identifier ("$user" included). */
export const setDatabaseSearchPath = (database: string, schemas: string[]) =>
  format('ALTER DATABASE %I SET search_path = %s', database, schemas.map((s) => format('%I', s)).join(', '));
export const refreshMaterializedView = (schema: string, name: string) => format('REFRESH MATERIALIZED VIEW %I.%I', schema, name);
export const setDatabaseConnectionLimit = (database: string, limit: number) => format('ALTER DATABASE %I WITH CONNECTION LIMIT %s', database, limit);

export const databaseExists = `SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1`;
export const dropDatabase = (database: string) => format('DROP DATABASE IF EXISTS %I WITH (FORCE)', database);
export const renameDatabase = (from: string, to: string) => format('ALTER DATABASE %I RENAME TO %I', from, to);
export const closeDatabase = (database: string) => format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS false', database);
export const openDatabase = (database: string) => format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS true', database);

/** Every session in a database but ours (a database must have none to be renamed). */
export const terminateDatabaseSessions = `SELECT count(pg_catalog.pg_terminate_backend(pid))::pg_catalog.int4 AS n FROM pg_catalog.pg_stat_activity
  WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid() AND backend_type = 'client backend'`;

/** The tenant's own sessions (its role and read-only roles), anywhere on the server. */
export const terminateRoleSessions = `SELECT count(pg_catalog.pg_terminate_backend(pid))::pg_catalog.int4 AS n FROM pg_catalog.pg_stat_activity
  WHERE usename = ANY($1::pg_catalog.text[]) AND pid <> pg_catalog.pg_backend_pid()`;
export const countRoleSessions = `SELECT count(*)::pg_catalog.int4 AS n FROM pg_catalog.pg_stat_activity WHERE usename = ANY($1::pg_catalog.text[])`;

/** Objects in the tenant database owned by a role other than the tenant's: they must exist on the target. */
export const objectOwners = `SELECT DISTINCT pg_catalog.pg_get_userbyid(o.owner) AS owner FROM (
    SELECT c.relowner AS owner FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pg_toast'])
    UNION SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pg_toast']) AND nspname !~ '^pg_'
    UNION SELECT p.proowner FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema'])
  ) o`;

/** The tenant's extensions and their versions (in its database). */
export const installedExtensions = `SELECT extname AS name, extversion AS version FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql' ORDER BY extname`;

/** Versions of an extension the server offers ($1: name). */
export const offeredVersions = `SELECT version FROM pg_catalog.pg_available_extension_versions WHERE name = $1`;

/** The tables of the tenant database (leaf tables: what holds rows), with what a move needs to know about each. */
export const userTables = `SELECT n.nspname AS schema, c.relname AS name, c.relpersistence AS persistence, c.relreplident AS replident,
    EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)) AS has_key,
    pg_catalog.pg_total_relation_size(c.oid)::pg_catalog.int8 AS bytes
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema']) AND n.nspname !~ '^pg_'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1, 2`;

export const materializedViews = `SELECT n.nspname AS schema, c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'm' AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema']) ORDER BY 1, 2`;

export const largeObjectCount = `SELECT count(*)::pg_catalog.int8 AS n FROM pg_catalog.pg_largeobject_metadata`;

/**
 * Tenant code that would run as the one writing rows (the apply worker or pg_restore: a superuser)
 * rather than as the table's owner: CHECK constraints and generated columns calling functions
 * outside pg_catalog, and triggers enabled ALWAYS or REPLICA (which fire on applied changes).
 */
export const codeRunByWriter = `SELECT 'constraint ' || c.conname AS what FROM pg_catalog.pg_constraint c
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = c.oid AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
    WHERE c.contype = 'c' AND pn.nspname <> 'pg_catalog'
  UNION SELECT 'generated column ' || a.adrelid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_attrdef a
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = a.oid AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
    WHERE pn.nspname <> 'pg_catalog'
  UNION SELECT 'trigger ' || t.tgname FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal AND t.tgenabled IN ('A', 'R')`;

export const setReplicaIdentityFull = (schema: string, table: string) => format('ALTER TABLE %I.%I REPLICA IDENTITY FULL', schema, table);

/** Constraint and index oids that must exist before the copy (primary keys, replica identity indexes): their TOC entries in the schema dump. */
export const keyObjectOids = `SELECT c.oid::pg_catalog.int8 AS oid FROM pg_catalog.pg_constraint c
    WHERE c.contype = 'p' OR (c.contype = 'u' AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indexrelid = c.conindid AND i.indisreplident))
  UNION SELECT i.indexrelid::pg_catalog.int8 FROM pg_catalog.pg_index i
    WHERE i.indisreplident AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid)`;

/** A table copy's slot, and its WAL sender's application_name: pg_<subscription oid>_sync_<table oid>_<system id>. */
const TABLE_COPY_NAME = `'^pg_[0-9]+_sync_[0-9]+_[0-9]+$'`;

/**
 * The server's replication settings and what holds them for good. A table copy of a subscription
 * in progress (anyone's, another move's included) takes a slot and a WAL sender on the source
 * (both named pg_<subscription>_sync_<table>_<system id>) and a worker on the target, and gives
 * them back when its table is copied; a copy that finds none free waits and retries. So they are
 * not counted: counting them refused moves that would only have waited (a drain moving four
 * tenants at once was refused its fifth). What is counted stays taken: other slots and senders,
 * and an apply worker per enabled subscription, running or not yet started.
 */
export const walSettings = `SELECT pg_catalog.current_setting('wal_level') AS wal_level,
    pg_catalog.current_setting('max_replication_slots')::pg_catalog.int4 AS max_slots,
    (SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name OPERATOR(pg_catalog.!~) ${TABLE_COPY_NAME})::pg_catalog.int4 AS slots_used,
    pg_catalog.current_setting('max_wal_senders')::pg_catalog.int4 AS max_senders,
    (SELECT count(*) FROM pg_catalog.pg_stat_replication WHERE application_name OPERATOR(pg_catalog.!~) ${TABLE_COPY_NAME})::pg_catalog.int4 AS senders_used,
    pg_catalog.current_setting('max_logical_replication_workers')::pg_catalog.int4 AS max_workers,
    (SELECT count(*) FROM pg_catalog.pg_subscription WHERE subenabled)::pg_catalog.int4 AS workers_used,
    pg_catalog.current_setting('server_version_num')::pg_catalog.int4 AS version_num,
    (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER) AS superuser`;

export const createPublication = (name: string) => format('CREATE PUBLICATION %I FOR ALL TABLES', name);
export const publicationExists = `SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1`;
export const dropPublication = (name: string) => format('DROP PUBLICATION IF EXISTS %I', name);

export const createSubscription = (name: string, conninfo: string, publication: string) =>
  format('CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION %I WITH (copy_data = true, create_slot = true, slot_name = %L)', name, conninfo, publication, name);
export const subscriptionExists = `SELECT subenabled FROM pg_catalog.pg_subscription WHERE subname = $1`;
export const disableSubscription = (name: string) => format('ALTER SUBSCRIPTION %I DISABLE', name);
export const detachSubscriptionSlot = (name: string) => format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', name);
export const dropSubscription = (name: string) => format('DROP SUBSCRIPTION IF EXISTS %I', name);

/** Tables of the subscription by state ('r': ready, i.e. copied and following). */
export const subscriptionTables = `SELECT count(*)::pg_catalog.int4 AS total, count(*) FILTER (WHERE r.srsubstate = 'r')::pg_catalog.int4 AS ready
  FROM pg_catalog.pg_subscription_rel r JOIN pg_catalog.pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1`;

/** How far the slot trails the source's WAL (bytes), and whether it is at or past $2. */
export const slotLag = `SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)::pg_catalog.int8 AS lag,
    ($2::pg_catalog.pg_lsn IS NOT NULL AND s.confirmed_flush_lsn >= $2::pg_catalog.pg_lsn) AS reached
  FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1`;
/**
 * The subscription's apply worker has received the source's WAL up to $2. It applies what it
 * receives in order, one message after the other, and the position moves on with the
 * walsender's keepalive once everything before it was sent: reaching $2 means every change
 * committed before it is applied (committed, visible) on the target.
 */
export const subscriptionReceived = `SELECT received_lsn >= $2::pg_catalog.pg_lsn AS reached FROM pg_catalog.pg_stat_subscription WHERE subname = $1 AND relid IS NULL`;
/** The subscription's oid and the system identifier of its server: what its table-sync slots are named by. */
export const subscriptionIdentity = `SELECT s.oid::pg_catalog.int8 AS oid, (SELECT c.system_identifier::pg_catalog.text FROM pg_catalog.pg_control_system() c) AS system_id
  FROM pg_catalog.pg_subscription s WHERE s.subname = $1`;
/**
 * A subscription's table-sync slots on the source: `pg_<subscription oid>_sync_<table oid>_<the
 * subscriber's system identifier>`. The oid alone is not the move's: another target server (a
 * drain moves to several) can give its subscription the same oid.
 */
export const tableSyncSlotPattern = (subscriptionOid: number, systemId: string) => `^pg_${subscriptionOid}_sync_[0-9]+_${systemId}$`;
/** The move's slot ($1) and its subscription's table-sync slots (matching $2, when known) on the source. */
export const moveSlots = `SELECT slot_name::pg_catalog.text AS slot_name, active_pid FROM pg_catalog.pg_replication_slots
  WHERE slot_name = $1 OR ($2::pg_catalog.text IS NOT NULL AND slot_name::pg_catalog.text OPERATOR(pg_catalog.~) $2)`;
export const dropSlot = `SELECT pg_catalog.pg_drop_replication_slot($1)`;

/** A WAL record in the tenant database, after its last write: the point the subscription must confirm. */
export const markWal = `SELECT pg_catalog.pg_logical_emit_message(false, 'tenantry-move', 'cutover')::pg_catalog.text AS lsn`;

/** Every sequence's state (pg_sequences: last_value null when never used). */
export const sequenceValues = `SELECT schemaname AS schema, sequencename AS name, last_value::pg_catalog.text AS last_value, start_value::pg_catalog.text AS start_value
  FROM pg_catalog.pg_sequences WHERE schemaname <> ALL (ARRAY['pg_catalog', 'information_schema']) ORDER BY 1, 2`;
export const setSequence = (schema: string, name: string, value: string, called: boolean) =>
  format('SELECT pg_catalog.setval(%L::pg_catalog.regclass, %s, %s)', format('%I.%I', schema, name), value, called ? 'true' : 'false');

/** Every table of the database the session may vacuum (as superuser: all; each runs as its owner). */
export const vacuumAnalyze = 'VACUUM (ANALYZE, SKIP_LOCKED)';
export const countRowsAs = (key: string, schema: string, table: string) =>
  format('SELECT %L::pg_catalog.text AS k, count(*)::pg_catalog.int8 AS n FROM %I.%I', key, schema, table);
export const countRows = (schema: string, table: string) => format('SELECT count(*)::pg_catalog.int8 AS n FROM %I.%I', schema, table);

export const databaseSize = `SELECT pg_catalog.pg_database_size($1)::pg_catalog.int8 AS bytes`;

/** What a move must leave behind on a server: its slot, publication, subscription, replication origin. */
export const moveLeftovers = `SELECT 'slot' AS kind, slot_name::pg_catalog.text AS name FROM pg_catalog.pg_replication_slots WHERE pg_catalog.starts_with(slot_name::pg_catalog.text, 'tenantry_move_')
  UNION ALL SELECT 'subscription', subname::pg_catalog.text FROM pg_catalog.pg_subscription WHERE pg_catalog.starts_with(subname::pg_catalog.text, 'tenantry_move_')
  UNION ALL SELECT 'origin', roname FROM pg_catalog.pg_replication_origin`;
