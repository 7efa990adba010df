import format from 'pg-format';
import type pg from 'pg';
import { EXTENSION_SCHEMA } from '../../sql/extensions.sql.js';

/**
 * Template steps that touch a tenant's tables run AS THE TENANT, never as the control plane:
 * the step's SQL goes through a SECURITY DEFINER function owned by the tenant's role. Inside
 * it PostgreSQL refuses SET ROLE, RESET ROLE and SET SESSION AUTHORIZATION, so whatever the
 * step sets off among the tenant's own objects (triggers, rules, defaults, index expressions,
 * operators of its types) runs with the tenant's privileges and cannot climb back to ours.
 *
 * What could still run after the function returns, at COMMIT, as the session's user: deferred
 * constraint triggers and deferred unique/exclusion checks, and WITH HOLD cursors. The function
 * ends by firing deferred events (SET CONSTRAINTS ALL IMMEDIATE, still as the tenant); the
 * session then closes every cursor, puts its search_path back (the tenant's code could have
 * SET it), and refuses to commit in a database that has deferrable constraints of those kinds,
 * since a trigger could have deferred new events again.
 */
const EXECUTOR = 'pg_temp.tenantry_run_as_owner';

/** Once per session: creates the executor (a temporary function) and gives it to the tenant's role. */
export async function createTenantExecutor(client: pg.ClientBase, role: string): Promise<void> {
  await client.query(
    format(
      `CREATE FUNCTION ${EXECUTOR}(step pg_catalog.text) RETURNS void
       LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, %I
       AS $fn$ BEGIN EXECUTE step; SET CONSTRAINTS ALL IMMEDIATE; END $fn$`,
      EXTENSION_SCHEMA,
    ),
  );
  await client.query(format(`ALTER FUNCTION ${EXECUTOR}(pg_catalog.text) OWNER TO %I`, role));
}

/** Commit-time work the tenant's code could have queued: any deferrable constraint that runs code. */
const DEFERRABLE_CODE = `SELECT pg_catalog.format('%s on %s', c.conname, c.conrelid::pg_catalog.regclass) AS what
  FROM pg_catalog.pg_constraint c
  WHERE c.condeferrable AND c.contype IN ('t', 'u', 'p', 'x')
  ORDER BY 1 LIMIT 5`;

export class UnsafeCommitError extends Error {
  constructor(what: string[]) {
    super(
      `the tenant database has deferrable constraints or constraint triggers (${what.join(', ')}); their checks run at COMMIT as the ` +
        'control plane, so Tenantry does not commit a template step there: make them NOT DEFERRABLE, or apply the step by hand',
    );
    this.name = 'UnsafeCommitError';
  }
}

/** Runs one step of Tenantry's SQL as the tenant (see above), then makes the session ours again. */
export async function runAsTenant(client: pg.ClientBase, sql: string): Promise<void> {
  await client.query(`SELECT ${EXECUTOR}($1::pg_catalog.text)`, [sql]);
  await client.query('CLOSE ALL');
  await client.query(`SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)`);
  const { rows } = await client.query<{ what: string }>(DEFERRABLE_CODE);
  if (rows.length > 0) throw new UnsafeCommitError(rows.map((r) => r.what));
}
