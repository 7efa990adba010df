import type { LockName } from '../../db/advisory-locks.js';
import type { ClusterAdmin, ServerFacts } from '../../db/cluster-admin.js';
import { controlPlaneConnections } from '../../db/connection-budget.js';
import type { Deps } from '../deps.js';
import { UserError } from '../errors.js';

export interface ClusterCapacity {
  maxConnections: number;
  superuserReserved: number;
  reserved: number;
  controlPlane: number;
  overcommitFactor: number;
  /** How many connections the tenants of this cluster may be promised in all. */
  capacity: number;
}

/** (max_connections − superuser-reserved − reserved − the control plane's own) × the over-commit factor. */
export async function clusterCapacity(deps: Deps, cluster: ClusterAdmin, known?: ServerFacts): Promise<ClusterCapacity> {
  const facts = known ?? (await cluster.facts());
  const controlPlane = controlPlaneConnections(cluster.holdsControlDatabase);
  const usable = facts.maxConnections - facts.superuserReservedConnections - facts.reservedConnections - controlPlane;
  return {
    maxConnections: facts.maxConnections,
    superuserReserved: facts.superuserReservedConnections,
    reserved: facts.reservedConnections,
    controlPlane,
    overcommitFactor: deps.config.OVERCOMMIT_FACTOR,
    capacity: Math.max(0, Math.floor(usable * deps.config.OVERCOMMIT_FACTOR)),
  };
}

/** Connections promised to the cluster's tenants, leaving one tenant out (the one being changed). */
export async function allocatedExcept(deps: Deps, clusterId: string, tenantId: string | null): Promise<number> {
  const { _sum } = await deps.db.quota.aggregate({
    _sum: { maxConnections: true },
    where: { tenant: { clusterId, status: { not: 'DEPROVISIONED' }, ...(tenantId ? { id: { not: tenantId } } : {}) } },
  });
  return _sum.maxConnections ?? 0;
}

/** Callers hold this while they check and change quotas on a cluster, so two changes cannot both fit. */
export function capacityLock(clusterId: string): LockName {
  return { kind: 'capacity', key: `tenantry:capacity:${clusterId}`, label: `the capacity of cluster ${clusterId}` };
}

/** CLUSTER_CAPACITY_EXCEEDED, with the numbers, when `quota` does not fit beside the others. */
export async function assertWithinCapacity(deps: Deps, cluster: ClusterAdmin, p: { tenantId: string | null; slug: string; quota: number }): Promise<void> {
  const [cap, others] = await Promise.all([clusterCapacity(deps, cluster), allocatedExcept(deps, cluster.id, p.tenantId)]);
  if (others + p.quota <= cap.capacity) return;
  throw new UserError(
    'CLUSTER_CAPACITY_EXCEEDED',
    `cluster ${cluster.name} can serve ${cap.capacity} tenant connections ` +
      `((max_connections ${cap.maxConnections} − ${cap.superuserReserved} superuser-reserved − ${cap.reserved} reserved − ${cap.controlPlane} for Tenantry) × over-commit ${cap.overcommitFactor}); ` +
      `${others} are allocated to other tenants, so ${p.slug} can have at most ${Math.max(0, cap.capacity - others)}, not ${p.quota}`,
    'maxConnections',
  );
}
