import type { Deps } from '../domain/deps.js';

export interface ReadinessReport {
  ready: boolean;
  checks: { name: string; ok: boolean; detail: string }[];
}

/** What /health/ready reports: the control database and each cluster, reachable or not. */
export async function checkReadiness(deps: Deps): Promise<ReadinessReport> {
  const checks: ReadinessReport['checks'] = [];
  try {
    await deps.db.$queryRaw`SELECT 1`;
    checks.push({ name: 'control-database', ok: true, detail: 'reachable and migrated' });
  } catch (err) {
    checks.push({ name: 'control-database', ok: false, detail: (err as Error).message });
  }
  const clusters = await deps.db.cluster.findMany({ orderBy: { name: 'asc' } }).catch(() => []);
  for (const row of clusters) {
    try {
      const facts = await (await deps.clusters.get(row.id)).facts();
      checks.push({ name: `cluster:${row.name}`, ok: true, detail: `PostgreSQL ${facts.serverVersion}` });
    } catch (err) {
      checks.push({ name: `cluster:${row.name}`, ok: false, detail: (err as Error).message });
    }
  }
  return { ready: checks.every((c) => c.ok), checks };
}
