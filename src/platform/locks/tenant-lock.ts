import type { LockName } from './advisory-locks.js';

/**
 * The advisory lock (in the control database) that serialises everything done to one
 * tenant database and role name on one cluster: provisioning, quota changes, upgrades,
 * extension updates, lifecycle changes, recovery, and the inventory's look at it.
 */
export function tenantLock(clusterId: string, databaseName: string): LockName {
  return { kind: 'tenant', key: `tenantry:tenant:${clusterId}:${databaseName}`, label: `tenant ${databaseName}` };
}
