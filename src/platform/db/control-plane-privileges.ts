import { withCatalogSession } from './session-settings.js';

export interface ControlPlanePrivileges {
  role: string;
  superuser: boolean;
  /** What a least-privilege role lacks, each with the statement a superuser runs to grant it. */
  missing: { what: string; fix: string }[];
}

/**
 * Tenantry runs as a superuser or as a least-privilege role (docs/security.md): CREATEDB,
 * CREATEROLE, and the privileges of pg_read_all_stats (every session's query and state in
 * pg_stat_activity) and pg_signal_backend (ending tenants' sessions). Checked once at start,
 * so a missing grant is named before anything fails half-way.
 */
export async function readControlPlanePrivileges(serverUrl: string, connectTimeoutMs: number): Promise<ControlPlanePrivileges> {
  const { rows } = await withCatalogSession(serverUrl, { connectTimeoutMs }, (client) =>
    client.query<{ role: string; rolsuper: boolean; rolcreatedb: boolean; rolcreaterole: boolean; read_all_stats: boolean; signal_backend: boolean }>(
      `SELECT r.rolname AS role, r.rolsuper, r.rolcreatedb, r.rolcreaterole,
         pg_catalog.pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE') AS read_all_stats,
         pg_catalog.pg_has_role(CURRENT_USER, 'pg_signal_backend', 'USAGE') AS signal_backend
       FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER`,
    ),
  );
  const r = rows[0]!;
  const quoted = `"${r.role.replace(/"/g, '""')}"`;
  const missing: ControlPlanePrivileges['missing'] = [];
  if (!r.rolsuper) {
    if (!r.rolcreatedb) missing.push({ what: 'CREATEDB (tenant, template and control databases)', fix: `ALTER ROLE ${quoted} CREATEDB;` });
    if (!r.rolcreaterole) missing.push({ what: 'CREATEROLE (tenant roles)', fix: `ALTER ROLE ${quoted} CREATEROLE;` });
    if (!r.read_all_stats) missing.push({ what: 'the privileges of pg_read_all_stats (usage sampling)', fix: `GRANT pg_read_all_stats TO ${quoted};` });
    if (!r.signal_backend) missing.push({ what: 'the privileges of pg_signal_backend (ending tenant sessions)', fix: `GRANT pg_signal_backend TO ${quoted};` });
  }
  return { role: r.role, superuser: r.rolsuper, missing };
}

export function describeMissingPrivileges(p: ControlPlanePrivileges): string {
  return (
    `the role "${p.role}" that DATABASE_URL logs in as is not a superuser and lacks what a least-privilege control plane needs:\n` +
    p.missing.map((m) => `  - ${m.what}: ${m.fix}`).join('\n') +
    '\nRun those statements as a superuser (docs/security.md, "A least-privilege control plane"), or use a superuser URL.'
  );
}
