// How PgBouncer authenticates tenants without Tenantry ever copying a password: PgBouncer
// logs in to each tenant database as the pooler's own role (auth_user) and asks the
// lookup function for the tenant's SCRAM verifier (auth_query). The verifier never leaves
// PostgreSQL and PgBouncer; a rotated password works at the next login, with no file
// rewritten. See docs/poolers.md, "Authentication".
import format from 'pg-format';
import type { ClusterAdmin } from '../../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../../platform/db/control-client.js';
import type { Logger } from '../../../platform/logger.js';
import {
  canActAs,
  createAuthUser,
  createLookupRole,
  databasesWithoutPoolerAccess,
  grantPoolerConnect,
  grantReadAllData,
  installLookupStatements,
  LOOKUP_SCHEMA,
  LOOKUP_VERSION,
  lookupState,
  poolerRoleFacts,
  setAuthUserPassword,
} from '../pooler-auth.sql.js';
import { generatePassword, scramSha256Verifier } from '../../tenants/index.js';

export interface PoolerRoles {
  /** NOLOGIN owner of the lookup function; reads pg_authid through pg_read_all_data. */
  lookupRole: string;
  /** The login PgBouncer's auth_query runs as; its plaintext password is in PgBouncer's auth file. */
  authUser: string;
}

/** Anything with node-postgres' query shape: a pg.Client, pg.Pool or ClusterAdmin. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: any[] }>;
}

/** The server lacks something only a superuser can set up; the message holds the SQL. */
export class PoolerSetupError extends Error {
  override name = 'PoolerSetupError';
}

/** SQL a superuser runs once so that a control plane without superuser can use PgBouncer. */
export function lookupRoleSetupSql(lookupRole: string, controlRole: string, versionNum: number): string {
  return [
    format('CREATE ROLE %I NOLOGIN;', lookupRole),
    format('GRANT pg_read_all_data TO %I;', lookupRole),
    versionNum >= 160000
      ? format('GRANT %I TO %I WITH INHERIT FALSE, SET TRUE;', lookupRole, controlRole)
      : format('GRANT %I TO %I;', lookupRole, controlRole),
  ].join('\n');
}

/** The auth user's password, one per control plane and shared by its replicas: the first one to start stores it. */
export async function poolerPassword(db: ControlClient, authUser: string): Promise<string> {
  await db.poolerCredential.createMany({ data: [{ roleName: authUser, password: generatePassword() }], skipDuplicates: true });
  return (await db.poolerCredential.findUniqueOrThrow({ where: { roleName: authUser } })).password;
}

const isDuplicate = (err: unknown) => ['42710', '23505'].includes((err as { code?: string }).code ?? '');

export class PoolerAuth {
  private constructor(
    readonly roles: PoolerRoles,
    /** The auth user's password: goes to PgBouncer's auth file, nowhere else on disk. */
    readonly password: string,
  ) {}

  /**
   * Makes sure the lookup role and the auth user (with this password) exist on the
   * cluster PgBouncer fronts. A superuser control plane creates what is missing; any other
   * role gets a PoolerSetupError saying exactly what a superuser must run once.
   */
  static async prepare(cluster: Queryable, roles: PoolerRoles, password: string, logger: Logger): Promise<PoolerAuth> {
    const { lookupRole, authUser } = roles;
    const facts = (await cluster.query(poolerRoleFacts, [lookupRole, authUser])).rows[0] as {
      am_superuser: boolean;
      version_num: number;
      lookup_exists: boolean;
      lookup_can_login: boolean | null;
      lookup_reads_all: boolean;
    };
    const problems: string[] = [];
    if (!facts.lookup_exists) {
      if (facts.am_superuser) {
        await cluster.query(createLookupRole(lookupRole)).catch((err) => {
          if (!isDuplicate(err)) throw err; // another control plane created it meanwhile
        });
        logger.info({ role: lookupRole }, 'created the pooler lookup role');
      } else problems.push(`role "${lookupRole}" does not exist`);
    } else if (facts.lookup_can_login) {
      problems.push(`role "${lookupRole}" can log in; the lookup role must be NOLOGIN`);
    }
    if (!facts.lookup_reads_all && (facts.lookup_exists || facts.am_superuser)) {
      if (facts.am_superuser) await cluster.query(grantReadAllData(lookupRole));
      else problems.push(`role "${lookupRole}" is not a member of pg_read_all_data (it reads pg_authid)`);
    }
    if (!facts.am_superuser && facts.lookup_exists) {
      const { rows } = await cluster.query(canActAs(facts.version_num), [lookupRole]);
      if (!rows[0]?.ok) problems.push(`the control plane's role cannot SET ROLE to "${lookupRole}" (it creates the lookup function as that role)`);
    }
    if (problems.length > 0) {
      const { rows } = await cluster.query('SELECT current_user AS me');
      throw new PoolerSetupError(
        `PgBouncer needs a lookup role that only a superuser can create: ${problems.join('; ')}. ` +
          `Run once as a superuser (or set POOLER=none):\n${lookupRoleSetupSql(lookupRole, rows[0]!.me, facts.version_num)}`,
      );
    }

    // Set at every start (as a verifier: the plaintext never reaches the server's logs), so
    // a role created by hand or a lost password heals itself; other replicas' PgBouncers
    // already hold the same plaintext.
    const verifier = scramSha256Verifier(password);
    try {
      await cluster.query(createAuthUser(authUser, verifier));
      logger.info({ role: authUser }, 'created the pooler auth user');
    } catch (err) {
      if (!isDuplicate(err)) throw err;
      await cluster.query(setAuthUserPassword(authUser, verifier));
    }
    return new PoolerAuth(roles, password);
  }

  /**
   * Installs (or brings up to date) the lookup function in the database `client` is
   * connected to. Idempotent and cheap when already in place (one catalog read). Refuses
   * a `tenantry` schema owned by anyone but the lookup role: its owner could replace the
   * function.
   */
  async install(client: Queryable): Promise<void> {
    const { lookupRole, authUser } = this.roles;
    const { rows } = await client.query(lookupState, [authUser]);
    const state = rows[0] as { schema_owner: string | null; function_owner: string | null; version: string | null; executable: boolean };
    if (state.schema_owner !== null && state.schema_owner !== lookupRole) {
      throw new PoolerSetupError(`schema "${LOOKUP_SCHEMA}" is owned by "${state.schema_owner}", not "${lookupRole}": refusing to install the pooler lookup in it`);
    }
    if (state.schema_owner === lookupRole && state.function_owner === lookupRole && state.version === LOOKUP_VERSION && state.executable) return;
    await client.query('BEGIN');
    try {
      for (const sql of installLookupStatements(lookupRole, authUser)) await client.query(sql);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * A new tenant database: the lookup function in it (normally copied from its template), and
   * CONNECT for the auth user. `inDatabase`: a session already connected to it (else one is opened).
   */
  async allowLogin(cluster: ClusterAdmin, database: string, inDatabase?: Queryable): Promise<void> {
    if (inDatabase) await this.install(inDatabase);
    else await cluster.withDatabase(database, (client) => this.install(client));
    await cluster.query(grantPoolerConnect(database, this.roles.authUser));
  }

  /**
   * Of these databases, those the auth user cannot enter yet (created before auth_query,
   * or while POOLER=none) get the function and the grant; at most `limit` per call, so a
   * large fleet upgrades over a few reconciliations. Returns how many are still left.
   */
  async repair(cluster: ClusterAdmin, databases: readonly string[], logger: Logger, limit = 100): Promise<number> {
    if (databases.length === 0) return 0;
    const { rows } = await cluster.query<{ datname: string }>(databasesWithoutPoolerAccess, [databases, this.roles.authUser]);
    for (const { datname } of rows.slice(0, limit)) {
      try {
        await this.allowLogin(cluster, datname);
        logger.info({ database: datname }, 'pooler logins enabled for an existing tenant database');
      } catch (err) {
        logger.warn({ err, database: datname }, 'could not enable pooler logins for a tenant database');
      }
    }
    return Math.max(0, rows.length - limit);
  }
}
