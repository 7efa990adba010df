// Switching an install that ran as a superuser to a least-privilege role (docs/security.md, "Switching
// an existing install to a least-privilege role"). What the superuser control plane made is
// the superuser's: the control database and everything in it, the tenant databases with
// `__SchemaVersion` and the `extensions` schema, the template databases, and the tenant roles
// (on PostgreSQL 16+ a CREATEROLE role may alter only roles it holds with ADMIN). Only a
// superuser can hand them over: `npm run least-privilege-sql -- <role> --existing` reads the
// install and prints the psql script that does it; the start-up check below names that
// command when a least-privilege start finds the superuser's objects.
import format from 'pg-format';
import { describeServer, withDatabase } from './connection-url.js';
import { leastPrivilegeSetupSql } from './least-privilege-setup.js';
import { withCatalogSession } from './session-settings.js';

/** What a switch hands over, read from the server and the control database. */
export interface SwitchPlan {
  /** The least-privilege role that takes over. */
  role: string;
  serverVersionNum: number;
  lookupRole: string;
  controlDatabase: string;
  /** Who owns the control database now (the role the install ran as). */
  formerOwner: string;
  /** Tenant databases on this server (they exist; handed over with what the control plane keeps in them). */
  tenantDatabases: string[];
  /** Template databases: caches the new role prepares again, so they are dropped. */
  templateDatabases: string[];
  /** Tenant roles: the control plane administers them and acts as them. */
  tenantRoles: string[];
  /** PgBouncer's auth user, when it exists: the control plane sets its password at every start. */
  poolerAuthUser: string | null;
}

export interface SwitchSettings {
  role: string;
  controlDatabase: string;
  lookupRole: string;
  /** PgBouncer's auth_query login (<CONTROL_DATABASE>_pooler by default). */
  authUser: string;
}

/** Role names the script accepts: anything else could not be embedded safely in its DO blocks. */
const ROLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Reads what a switch to `settings.role` hands over (through a superuser's URL; the control database must exist). */
export async function readSwitchPlan(superuserUrl: string, settings: SwitchSettings): Promise<SwitchPlan> {
  if (!ROLE_NAME.test(settings.role)) throw new Error(`role name ${JSON.stringify(settings.role)}: use letters, digits and _ only`);
  const session = { applicationName: 'tenantry-switch' };
  return withCatalogSession(superuserUrl, session, async (server) => {
    const { rows: facts } = await server.query<{ version: number; owner: string | null; superuser: boolean }>(
      `SELECT pg_catalog.current_setting('server_version_num')::int AS version,
         (SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = $1) AS owner,
         (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER) AS superuser`,
      [settings.controlDatabase],
    );
    const { version, owner, superuser } = facts[0]!;
    if (!superuser) throw new Error(`${describeServer(superuserUrl).user} is not a superuser: give DATABASE_URL a superuser's URL`);
    if (owner === null) throw new Error(`there is no control database "${settings.controlDatabase}" on this server: nothing to switch (set CONTROL_DATABASE), or set up a new install with the SQL printed without --existing`);
    // Tenants on this server (a cluster row without a URL): their database and role, whatever their status.
    const { rows: tenants } = await withCatalogSession(withDatabase(superuserUrl, settings.controlDatabase), session, (control) =>
      control.query<{ database_name: string; role_name: string }>(
        `SELECT t.database_name, t.role_name FROM public.tenants t JOIN public.clusters c ON c.id OPERATOR(pg_catalog.=) t.cluster_id
          WHERE c.connection_url IS NULL ORDER BY t.database_name`,
      ),
    );
    const { rows: databases } = await server.query<{ datname: string }>(`SELECT datname FROM pg_catalog.pg_database WHERE datname = ANY($1::pg_catalog.text[]) ORDER BY datname`, [
      tenants.map((t) => t.database_name),
    ]);
    // A superuser's template databases (those the role prepared itself stay: the script can run again).
    const { rows: templates } = await server.query<{ datname: string }>(
      `SELECT datname FROM pg_catalog.pg_database WHERE pg_catalog.starts_with(datname, $1) AND datdba IN (SELECT oid FROM pg_catalog.pg_roles WHERE rolsuper) ORDER BY datname`,
      [`${settings.controlDatabase}_tpl_`],
    );
    const { rows: roles } = await server.query<{ rolname: string }>(
      `SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY($1::pg_catalog.text[]) AND NOT rolsuper ORDER BY rolname`,
      [[...tenants.map((t) => t.role_name), settings.authUser]],
    );
    const existingRoles = new Set(roles.map((r) => r.rolname));
    return {
      role: settings.role,
      serverVersionNum: version,
      lookupRole: settings.lookupRole,
      controlDatabase: settings.controlDatabase,
      formerOwner: owner,
      tenantDatabases: databases.map((d) => d.datname),
      templateDatabases: templates.map((d) => d.datname),
      tenantRoles: tenants.map((t) => t.role_name).filter((r) => existingRoles.has(r)),
      poolerAuthUser: existingRoles.has(settings.authUser) ? settings.authUser : null,
    };
  });
}

/**
 * Inside one database: gives `role` every schema, relation, type and routine a superuser owns
 * there (what a superuser control plane created), except the system's and extensions' own.
 * Extensions themselves stay their creator's: PostgreSQL cannot hand them over. A sequence
 * that belongs to a column follows its table; a table's row type and array types follow
 * their owner, so only enums, domains, ranges and free-standing composites are named. One
 * line without comments or backslashes: the script keeps it in a psql variable.
 */
export function handOverObjectsSql(role: string): string {
  const notSystem = (ns: string) => `${ns}.nspname <> 'information_schema' AND NOT pg_catalog.starts_with(${ns}.nspname, 'pg_')`;
  const notExtensionMember = (catalog: string, oid: string) =>
    `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = '${catalog}'::pg_catalog.regclass AND d.objid = ${oid} AND d.deptype = 'e')`;
  const bySuperuser = (owner: string) => `${owner} IN (SELECT oid FROM pg_catalog.pg_roles WHERE rolsuper)`;
  const statements = [
    `SELECT pg_catalog.format('ALTER SCHEMA %%I OWNER TO %%I', n.nspname, target) AS statement FROM pg_catalog.pg_namespace n
      WHERE ${bySuperuser('n.nspowner')} AND ${notSystem('n')} AND ${notExtensionMember('pg_catalog.pg_namespace', 'n.oid')}`,
    `SELECT pg_catalog.format('ALTER %%s %%s OWNER TO %%I',
        CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, c.oid::pg_catalog.regclass, target)
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE ${bySuperuser('c.relowner')} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND ${notSystem('n')} AND ${notExtensionMember('pg_catalog.pg_class', 'c.oid')}
        AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
          AND d.objid = c.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')))`,
    `SELECT pg_catalog.format('ALTER %%s %%s OWNER TO %%I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::pg_catalog.regtype, target)
      FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
      WHERE ${bySuperuser('t.typowner')} AND ${notSystem('n')} AND ${notExtensionMember('pg_catalog.pg_type', 't.oid')}
        AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c'))`,
    `SELECT pg_catalog.format('ALTER %%s %%s OWNER TO %%I', CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END, p.oid::pg_catalog.regprocedure, target)
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      WHERE ${bySuperuser('p.proowner')} AND ${notSystem('n')} AND ${notExtensionMember('pg_catalog.pg_proc', 'p.oid')}`,
  ];
  const block = format(
    `DO $tenantry_switch$ DECLARE target pg_catalog.text := %L; r record; BEGIN
       PERFORM pg_catalog.set_config('search_path', 'pg_catalog', true);
       FOR r IN ${statements.join(' UNION ALL ')} LOOP EXECUTE r.statement; END LOOP;
     END $tenantry_switch$;`,
    role,
  );
  return block.replace(/\s+/g, ' ');
}

/**
 * PostgreSQL 16+: a CREATEROLE role may alter, grant and drop only roles it holds WITH ADMIN,
 * and acts as a tenant through SET (as provisioning grants it: no inheriting). 15 lets a
 * CREATEROLE role alter any other, but it must be a member to act as one.
 */
function administerRolesSql(plan: SwitchPlan): string[] {
  const modern = plan.serverVersionNum >= 160000;
  return [
    ...plan.tenantRoles.map((r) => (modern ? format('GRANT %I TO %I WITH ADMIN TRUE, INHERIT FALSE, SET TRUE;', r, plan.role) : format('GRANT %I TO %I;', r, plan.role))),
    ...(plan.poolerAuthUser && modern ? [format('GRANT %I TO %I WITH ADMIN TRUE, INHERIT FALSE, SET FALSE;', plan.poolerAuthUser, plan.role)] : []),
  ];
}

/** A psql meta-command argument in single quotes (no backslash may appear in it). */
function psqlQuoted(text: string): string {
  if (text.includes('\\')) throw new Error('a psql variable cannot hold a backslash here');
  return `'${text.replace(/'/g, "''")}'`;
}

/** `\connect` to a database; the name quoted as psql reads it. */
const connectTo = (database: string) => `\\connect ${format('%I', database)}`;

/**
 * The psql script a superuser runs once, with every Tenantry on the install stopped:
 * idempotent (a second run changes nothing), statement by statement (no transaction can
 * span \connect and DROP DATABASE).
 */
export function switchScript(plan: SwitchPlan): string {
  const { role } = plan;
  const lines = [
    `-- Hands the Tenantry install in "${plan.controlDatabase}" (run as "${plan.formerOwner}") over to the least-privilege role "${role}".`,
    '-- Run once as a superuser, with every Tenantry on it stopped:  ... | psql "<superuser URL>" -v ON_ERROR_STOP=1',
    '\\set ON_ERROR_STOP on',
    '-- The role and what it needs (as for a new install; set its password yourself if it has none).',
    ...leastPrivilegeSetupSql({ controlRole: role, lookupRole: plan.lookupRole, serverVersionNum: plan.serverVersionNum }),
    `-- The control database and ${plan.tenantDatabases.length} tenant databases become ${role}'s.`,
    format('ALTER DATABASE %I OWNER TO %I;', plan.controlDatabase, role),
    ...plan.tenantDatabases.map((d) => format('ALTER DATABASE %I OWNER TO %I;', d, role)),
    `-- Template databases are caches: ${role} prepares them again, as its own.`,
    ...plan.templateDatabases.flatMap((d) => [format('ALTER DATABASE %I WITH IS_TEMPLATE false;', d), format('DROP DATABASE IF EXISTS %I;', d)]),
    `-- The tenants' roles and the pooler's auth user: ${role} administers them.`,
    ...administerRolesSql(plan),
    `-- Inside each database, what ${plan.formerOwner} (or another superuser) made there: one block, kept in a psql variable.`,
    `\\set tenantry_handover ${psqlQuoted(handOverObjectsSql(role))}`,
    ...[plan.controlDatabase, ...plan.tenantDatabases].flatMap((d) => [connectTo(d), ':tenantry_handover']),
  ];
  return `${lines.join('\n')}\n`;
}

/** What a least-privilege start found of a superuser's, and the one command that hands it over. */
export class SuperuserLeftoversError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SuperuserLeftoversError';
  }
}

export interface SwitchCommandSettings {
  controlDatabase: string;
  poolerLookupRole: string;
  /** Only when set (its default follows CONTROL_DATABASE). */
  poolerAuthUser?: string;
}

/** The command that prints and runs the switch script, for `role` on the server of `serverUrl`, as `superuser`. */
export function switchCommand(serverUrl: string, superuser: string, role: string, s: SwitchCommandSettings): string {
  const u = new URL(withDatabase(serverUrl, 'postgres'));
  u.username = encodeURIComponent(superuser);
  u.password = '';
  const url = u.toString();
  const env = [
    `DATABASE_URL='${url}'`,
    `CONTROL_DATABASE=${s.controlDatabase}`,
    `POOLER_LOOKUP_ROLE=${s.poolerLookupRole}`,
    ...(s.poolerAuthUser ? [`POOLER_AUTH_USER=${s.poolerAuthUser}`] : []),
  ];
  return `${env.join(' ')} npm run -s least-privilege-sql -- ${role} --existing | psql '${url}' -v ON_ERROR_STOP=1`;
}

/**
 * For a control plane that is not superuser: the control database, or one of
 * `tenantDatabases`, still belongs to another role (the install ran as a superuser). Throws
 * SuperuserLeftoversError naming the command that hands them over. Called before the control
 * database is touched (with no tenant databases: they are not known yet) and once it is read.
 */
export async function checkNothingLeftBySuperuser(serverUrl: string, settings: SwitchCommandSettings, tenantDatabases: readonly string[], connectTimeoutMs: number): Promise<void> {
  const { rows } = await withCatalogSession(serverUrl, { connectTimeoutMs }, (client) =>
    client.query<{ me: string; datname: string; owner: string; owner_is_superuser: boolean; control: boolean }>(
      `SELECT CURRENT_USER AS me, d.datname, pg_catalog.pg_get_userbyid(d.datdba) AS owner, r.rolsuper AS owner_is_superuser, d.datname = $1 AS control
         FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles r ON r.oid = d.datdba
        WHERE (d.datname = $1 AND NOT pg_catalog.pg_has_role(CURRENT_USER, d.datdba, 'USAGE'))
           OR (d.datname = ANY($2::pg_catalog.text[]) AND r.rolsuper AND r.rolname <> CURRENT_USER)
        ORDER BY d.datname <> $1, d.datname`,
      [settings.controlDatabase, tenantDatabases],
    ),
  );
  if (rows.length === 0) return;
  const { me, owner, owner_is_superuser: ownerIsSuperuser } = rows[0]!;
  const control = rows.find((r) => r.control);
  const controlOwned = control && `the control database "${control.datname}" belongs to "${owner}", not to "${me}" (the role DATABASE_URL logs in as)`;
  if (controlOwned && !ownerIsSuperuser) {
    throw new SuperuserLeftoversError(
      `${controlOwned}: start Tenantry as "${owner}", ` +
        `or have a superuser run REASSIGN OWNED BY ${format('%I', owner)} TO ${format('%I', me)} in the control database and in each tenant database`,
    );
  }
  const tenants = rows.filter((r) => !r.control);
  const named = `${tenants.slice(0, 3).map((t) => `"${t.datname}"`).join(', ')}${tenants.length > 3 ? ', ...' : ''}`;
  const count = tenants.length === 1 ? 'tenant database' : `${tenants.length} tenant databases`;
  const found = controlOwned || `${count} ${named} belong${tenants.length === 1 ? 's' : ''} to the superuser "${owner}", not to "${me}"`;
  throw new SuperuserLeftoversError(
    `${found}: this install ran as "${owner}". Switching it to a least-privilege role also hands over what "${owner}" made ` +
      '(the control database, the tenant databases and roles). Stop every Tenantry on it, then run once:\n' +
      `  ${switchCommand(serverUrl, owner, me, settings)}\n` +
      'and start again (docs/security.md, "Switching an existing install to a least-privilege role"); or start with the superuser\'s URL.',
  );
}
