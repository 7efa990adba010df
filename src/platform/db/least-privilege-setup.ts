import format from 'pg-format';

/**
 * The one-time SQL a superuser runs so that Tenantry can run as a role that is not superuser
 * (docs/security.md, "A least-privilege control plane"). Idempotent: running it again changes
 * nothing but the password (when one is given, as a SCRAM verifier).
 *
 * - the control plane's role: LOGIN, CREATEDB (tenant, template and control databases),
 *   CREATEROLE (tenant roles; it becomes a member of each role it creates), the privileges of
 *   pg_read_all_stats (everyone's sessions in pg_stat_activity) and pg_signal_backend (ending
 *   tenants' sessions);
 * - the role that owns PgBouncer's lookup function in every tenant database: NOLOGIN, reading
 *   pg_authid through pg_read_all_data; the control plane may SET ROLE to it (on PostgreSQL 16+
 *   without inheriting its privileges) to install the function.
 */
export function leastPrivilegeSetupSql(p: { controlRole: string; passwordVerifier?: string; lookupRole: string; serverVersionNum: number }): string[] {
  const ensureRole = (role: string, attributes: string) =>
    format(
      `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %L) THEN EXECUTE %L; END IF; END $$;`,
      role,
      format(`CREATE ROLE %I ${attributes}`, role),
    );
  return [
    ensureRole(p.controlRole, 'LOGIN'),
    format('ALTER ROLE %I LOGIN NOSUPERUSER CREATEDB CREATEROLE%s;', p.controlRole, p.passwordVerifier ? format(' PASSWORD %L', p.passwordVerifier) : ''),
    format('GRANT pg_read_all_stats TO %I;', p.controlRole),
    format('GRANT pg_signal_backend TO %I;', p.controlRole),
    ensureRole(p.lookupRole, 'NOLOGIN'),
    format('GRANT pg_read_all_data TO %I;', p.lookupRole),
    p.serverVersionNum >= 160000
      ? format('GRANT %I TO %I WITH INHERIT FALSE, SET TRUE;', p.lookupRole, p.controlRole)
      : format('GRANT %I TO %I;', p.lookupRole, p.controlRole),
  ];
}
