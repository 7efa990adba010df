/**
 * The advisory lock (in the control database) that serialises everything done to one
 * tenant database and role name on one cluster: provisioning, quota changes, upgrades,
 * extension updates, lifecycle changes, and the inventory's look at it.
 */
export function tenantLockName(clusterId: string, databaseName: string): string {
  return `tenantry:tenant:${clusterId}:${databaseName}`;
}
