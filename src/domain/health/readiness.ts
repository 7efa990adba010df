import { loadControlMigrations } from '../../db/control-migrations.js';
import { availableExtensions } from '../../sql/extensions.sql.js';
import type { Deps } from '../deps.js';
import { extensionReport } from '../extensions/extension-status.js';
import { policyOf } from '../extensions/tenant-extensions.js';
import { compatibilityOf } from '../templates/compatibility.js';

export interface ReadinessCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface TenantHealth {
  slug: string;
  problems: string[];
  /** An INCOMPATIBLE schema: it makes a production server not ready. */
  blocking: boolean;
}

export interface ReadinessReport {
  ready: boolean;
  mode: 'production' | 'development';
  checks: ReadinessCheck[];
  tenantsChecked: number;
  tenants: TenantHealth[];
  /** Why the server is not ready (empty when ready). */
  reasons: string[];
  /** Problems that do not make it not ready (in development: all of them). */
  warnings: string[];
  checkedAt: Date;
}

/** The migrations this build ships: read from disk once, then known for the life of the process. */
let shippedMigrations: Promise<string[]> | undefined;
const migrationNames = () => (shippedMigrations ??= loadControlMigrations().then((ms) => ms.map((m) => m.name)));

/**
 * The truth about readiness: the control database (reachable, every migration applied),
 * each cluster (reachable, its version), the pooler, and per tenant what the inventory
 * last found (database, required tables, extensions against policy, schema compatibility).
 * In production an unreachable or unmigrated control database or an INCOMPATIBLE tenant
 * makes the server not ready; in development they are warnings.
 */
export async function checkReadiness(deps: Deps): Promise<ReadinessReport> {
  const production = deps.config.NODE_ENV === 'production';
  const checks: ReadinessCheck[] = [];
  const hard: string[] = [];
  const soft: string[] = [];

  let controlOk = false;
  try {
    const applied = await deps.db.$queryRaw<{ migration_name: string }[]>`SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`;
    const missing = (await migrationNames()).filter((n) => !applied.some((a) => a.migration_name === n));
    controlOk = missing.length === 0;
    checks.push({ name: 'control-database', ok: controlOk, detail: controlOk ? `reachable, ${applied.length} migrations applied` : `migrations not applied: ${missing.join(', ')}` });
  } catch (err) {
    checks.push({ name: 'control-database', ok: false, detail: `unreachable: ${(err as Error).message}` });
  }
  if (!controlOk) hard.push(`control database: ${checks[0]!.detail}`);

  const tenants: TenantHealth[] = [];
  let tenantsChecked = 0;
  if (controlOk) {
    const offeredByCluster = new Map<string, Map<string, string[]>>();
    for (const row of await deps.db.cluster.findMany({ orderBy: { name: 'asc' } })) {
      try {
        const cluster = await deps.clusters.get(row.id);
        const facts = await cluster.facts();
        const offered = await cluster.query<{ name: string; versions: string[] }>(availableExtensions);
        offeredByCluster.set(row.id, new Map(offered.rows.map((o) => [o.name, o.versions])));
        checks.push({ name: `cluster:${row.name}`, ok: true, detail: `PostgreSQL ${facts.serverVersion}` });
      } catch (err) {
        checks.push({ name: `cluster:${row.name}`, ok: false, detail: `unreachable: ${(err as Error).message}` });
        soft.push(`cluster ${row.name} is unreachable`);
      }
    }
    checks.push(await poolerCheck(deps));
    if (!checks.at(-1)!.ok) soft.push(`pooler: ${checks.at(-1)!.detail}`);

    const rows = await deps.db.tenant.findMany({
      where: { status: { in: ['ACTIVE', 'SUSPENDED'] } },
      include: { inventory: true, extensions: true, schemaVersions: true },
      orderBy: { slug: 'asc' },
    });
    tenantsChecked = rows.length;
    for (const t of rows) {
      const problems: string[] = [];
      let blocking = false;
      const inv = t.inventory;
      if (!inv) problems.push('not inventoried yet');
      else {
        if (!inv.databasePresent) problems.push(`database ${t.databaseName} is missing`);
        for (const table of inv.missingTables as string[]) problems.push(`table ${table} is missing`);
        if (inv.error) problems.push(`inventory could not read it: ${inv.error}`);
      }
      const version = t.schemaVersions[0]?.version;
      const expected = deps.catalog.resolve(t.templateName)?.version;
      if (version && expected && compatibilityOf(version, expected) === 'INCOMPATIBLE') {
        problems.push(`schema ${version} is INCOMPATIBLE with ${t.templateName} ${expected}`);
        blocking = true;
      }
      const offered = offeredByCluster.get(t.clusterId);
      if (offered) {
        for (const e of extensionReport(policyOf(deps, t), new Map(t.extensions.map((x) => [x.name, x.version])), offered)) {
          if (e.status !== 'OK') problems.push(`extension ${e.name} is ${e.status}${e.installedVersion ? ` (${e.installedVersion})` : ''}`);
        }
      }
      if (problems.length) tenants.push({ slug: t.slug, problems, blocking });
    }
    for (const t of tenants) (t.blocking ? hard : soft).push(`tenant ${t.slug}: ${t.problems.join('; ')}`);
  }

  const reasons = production ? hard : [];
  const warnings = production ? soft : [...hard, ...soft];
  return { ready: reasons.length === 0, mode: production ? 'production' : 'development', checks, tenantsChecked, tenants, reasons, warnings, checkedAt: new Date() };
}

async function poolerCheck(deps: Deps): Promise<ReadinessCheck> {
  const driver = deps.pools.driver;
  if (!driver) return { name: 'pooler', ok: true, detail: deps.pooler.description };
  try {
    const pools = await driver.observe();
    return { name: 'pooler', ok: true, detail: `${driver.kind} reachable, ${pools.length} pools` };
  } catch (err) {
    return { name: 'pooler', ok: false, detail: `${driver.kind} unreachable: ${(err as Error).message}` };
  }
}
