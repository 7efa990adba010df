import type { ObservedPool, PoolSpec } from './pooler-driver.js';

/** How what a pooler runs differs from what Tenantry wants. */
export interface PoolDrift {
  missing: string[];
  orphaned: string[];
  /** Pools whose database, size or mode differ, with what differs. */
  mismatched: { name: string; differences: string[] }[];
}

export function comparePools(desired: readonly PoolSpec[], observed: readonly ObservedPool[]): PoolDrift {
  const seen = new Map(observed.map((o) => [o.name, o]));
  const drift: PoolDrift = { missing: [], orphaned: [], mismatched: [] };
  for (const want of desired) {
    const got = seen.get(want.name);
    seen.delete(want.name);
    if (!got) {
      drift.missing.push(want.name);
      continue;
    }
    const fields: [string, unknown, unknown][] = [
      ['database', want.database, got.database],
      ['pool_size', want.poolSize, got.poolSize],
      ['max_db_connections', want.maxDbConnections, got.maxDbConnections],
      ['pool_mode', want.mode, got.mode],
      // Only where the spec names its server (PoolSync always does): which cluster it points at.
      ...(want.serverHost === undefined ? [] : ([['host', want.serverHost, got.host]] as [string, unknown, unknown][])),
      ...(want.serverPort === undefined ? [] : ([['port', want.serverPort, got.port]] as [string, unknown, unknown][])),
    ];
    const differences = fields.filter(([, w, g]) => w !== g).map(([field, w, g]) => `${field} is ${String(g)}, expected ${String(w)}`);
    if (differences.length) drift.mismatched.push({ name: want.name, differences });
  }
  drift.orphaned = [...seen.keys()];
  return drift;
}

/** The drift as sentences; empty when the pooler runs exactly what is wanted. */
export function describeDrift(drift: PoolDrift): string[] {
  return [
    ...drift.missing.map((n) => `pool "${n}" is missing`),
    ...drift.mismatched.flatMap((m) => m.differences.map((d) => `pool "${m.name}": ${d}`)),
    ...drift.orphaned.map((n) => `pool "${n}" should not exist`),
  ];
}
