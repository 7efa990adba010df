import format from 'pg-format';
import type pg from 'pg';
import { EXTENSION_SCHEMA } from '../tenants/index.js';

/**
 * Template steps that touch a tenant's tables run AS THE TENANT, never as the control plane:
 * the step's SQL goes through a SECURITY DEFINER function (the step runner) owned by the
 * tenant's role. Inside it PostgreSQL refuses SET ROLE, RESET ROLE and SET SESSION
 * AUTHORIZATION, so whatever the step sets off among the tenant's own objects (triggers, rules,
 * defaults, check constraints, index expressions, operators of its types) runs with the
 * tenant's privileges and cannot climb back to ours.
 *
 * The runner belongs to the tenant (that is what makes it run as the tenant), so the tenant's
 * code, fired by one step, can change it: CREATE OR REPLACE it without SECURITY DEFINER, ALTER
 * it to SECURITY INVOKER, or drop it and create another of the same name. The next call would
 * then run the tenant's code as the control plane. So the runner is checked against what was
 * created (its OID, its owner, its whole definition, and that it is the only function of its
 * name in the session's temporary schema) BEFORE EVERY CALL, and again after the call, inside
 * the step's transaction: a step during which the runner changed is refused and rolled back
 * with it. Between those checks and the call nothing of the tenant's runs: the checks read the
 * catalog only, with qualified names, and other sessions cannot reach this session's
 * temporary schema.
 *
 * What could still run after the function returns, at COMMIT, as the session's user: deferred
 * constraint triggers and deferred unique/exclusion checks, and WITH HOLD cursors. The runner
 * ends by firing deferred events (SET CONSTRAINTS ALL IMMEDIATE, still as the tenant); the
 * session then closes every cursor, resets every setting the tenant's code could have changed
 * (RESET ALL: back to the startup options, search_path and timeouts included), and refuses to
 * commit in a database that has deferrable constraints of those kinds, since a trigger could
 * have deferred new events again.
 */
const RUNNER_NAME = 'tenantry_run_as_owner';
const RUNNER = `pg_temp.${RUNNER_NAME}`;

/** The step runner was changed or replaced: the step that was running (or about to) is refused. */
export class StepRunnerTamperedError extends Error {
  constructor(what: string) {
    super(
      `the tenant's own code changed Tenantry's step runner (${what}); the step was refused and rolled back, and nothing of the tenant's ran as the control plane. ` +
        'Look for triggers, rules, defaults, checks or index expressions in the tenant database that create, alter or drop functions',
    );
    this.name = 'StepRunnerTamperedError';
  }
}

export class UnsafeCommitError extends Error {
  constructor(what: string[]) {
    super(
      `the tenant database has deferrable constraints or constraint triggers (${what.join(', ')}); their checks run at COMMIT as the ` +
        'control plane, so Tenantry does not commit a template step there: make them NOT DEFERRABLE, or apply the step by hand',
    );
    this.name = 'UnsafeCommitError';
  }
}

/** Commit-time work the tenant's code could have queued: any deferrable constraint that runs code. */
const DEFERRABLE_CODE = `SELECT pg_catalog.format('%s on %s', c.conname, c.conrelid::pg_catalog.regclass) AS what
  FROM pg_catalog.pg_constraint c
  WHERE c.condeferrable AND c.contype IN ('t', 'u', 'p', 'x')
  ORDER BY 1 LIMIT 5`;

/**
 * The runner as the catalog shows it now. `resolved` is what the call's name resolves to;
 * `namesakes` counts every function of that name in this session's temporary schema (an
 * overload with defaults or VARIADIC could otherwise be picked instead).
 */
const RUNNER_NOW = `SELECT p.oid::pg_catalog.int8 AS oid, p.proowner::pg_catalog.int8 AS owner, pg_catalog.pg_get_functiondef(p.oid) AS definition,
    (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc q WHERE q.pronamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND q.proname OPERATOR(pg_catalog.=) '${RUNNER_NAME}')::pg_catalog.int4 AS namesakes
  FROM pg_catalog.pg_proc p
  WHERE p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure('${RUNNER}(pg_catalog.text)')`;

interface RunnerRow {
  oid: string;
  owner: string;
  definition: string;
  namesakes: number;
}

/**
 * Runs template steps as the tenant in one control-plane session (see above). Made once per
 * session with `create`, before any of the tenant's code has run in it.
 */
export class TenantStepRunner {
  private constructor(
    private readonly client: pg.ClientBase,
    private readonly expected: RunnerRow,
  ) {}

  /** Creates the runner (a temporary function), gives it to the tenant's role, and remembers exactly what it is. */
  static async create(client: pg.ClientBase, role: string): Promise<TenantStepRunner> {
    await client.query(
      format(
        `CREATE FUNCTION ${RUNNER}(step pg_catalog.text) RETURNS void
         LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, %I, pg_temp
         AS $fn$ BEGIN EXECUTE step; SET CONSTRAINTS ALL IMMEDIATE; END $fn$`,
        EXTENSION_SCHEMA,
      ),
    );
    await client.query(format(`ALTER FUNCTION ${RUNNER}(pg_catalog.text) OWNER TO %I`, role));
    const { rows } = await client.query<RunnerRow>(RUNNER_NOW);
    const row = rows[0];
    const owner = await client.query<{ oid: string }>('SELECT r.oid::pg_catalog.int8 AS oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name', [role]);
    if (!row || row.namesakes !== 1 || row.owner !== owner.rows[0]?.oid) throw new StepRunnerTamperedError('it was not as created');
    return new TenantStepRunner(client, row);
  }

  /** Runs one step of Tenantry's SQL as the tenant, inside the caller's transaction, then makes the session ours again. */
  async run(sql: string): Promise<void> {
    await this.verify('before the step');
    await this.client.query(`SELECT ${RUNNER}($1::pg_catalog.text)`, [sql]);
    await this.verify('during the step');
    await this.client.query('CLOSE ALL');
    await this.client.query('RESET ALL');
    const { rows } = await this.client.query<{ what: string }>(DEFERRABLE_CODE);
    if (rows.length > 0) throw new UnsafeCommitError(rows.map((r) => r.what));
  }

  /** Throws StepRunnerTamperedError unless the runner is exactly the function `create` made. */
  private async verify(when: string): Promise<void> {
    const { rows } = await this.client.query<RunnerRow>(RUNNER_NOW);
    const now = rows[0];
    if (!now) throw new StepRunnerTamperedError(`${when}: it was dropped`);
    if (now.oid !== this.expected.oid) throw new StepRunnerTamperedError(`${when}: it was dropped and another function took its name`);
    if (now.namesakes !== 1) throw new StepRunnerTamperedError(`${when}: another function of the same name was created beside it`);
    if (now.owner !== this.expected.owner) throw new StepRunnerTamperedError(`${when}: its owner changed`);
    if (now.definition !== this.expected.definition) throw new StepRunnerTamperedError(`${when}: its definition changed`);
  }
}
