/**
 * The connections Tenantry itself may hold on a server, from the sizes of its own pools.
 * They count against the server's capacity before any tenant quota does.
 */
export const CONTROL_CLIENT_POOL = 10; // Prisma on the control database
export const CONTROL_LOCK_POOL = 10; // advisory locks on the control database
export const CLUSTER_ADMIN_POOL = 4; // DDL and catalog work on each managed server
export const CLUSTER_SHORT_LIVED = 2; // clients into single tenant databases, at most a couple at once

export function controlPlaneConnections(holdsControlDatabase: boolean): number {
  return CLUSTER_ADMIN_POOL + CLUSTER_SHORT_LIVED + (holdsControlDatabase ? CONTROL_CLIENT_POOL + CONTROL_LOCK_POOL : 0);
}
