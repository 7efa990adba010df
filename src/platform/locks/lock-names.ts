import type { LockName } from './advisory-locks.js';

// Every advisory lock Tenantry takes, in one place (the rank order of the request locks is in
// advisory-locks.ts). Keys of the request locks are text hashed by PostgreSQL
// (hashtextextended); the migration locks are fixed numbers.

/**
 * Everything done to one tenant database and role name: provisioning, quota changes, upgrades,
 * extension updates, lifecycle changes, recovery, moves, and the inventory's look. Not keyed by
 * cluster: a tenant that moves keeps its lock, so a request that waited for the move's lock
 * cannot then work on the cluster the tenant just left (TenantAccess reads the cluster again
 * under the lock). Up to 0.6 the key held the cluster id: replicas of both versions must not
 * serve one control database together.
 */
export function tenantLock(databaseName: string): LockName {
  return { kind: 'tenant', key: `tenantry:tenant:${databaseName}`, label: `tenant ${databaseName}` };
}

/** Checking and changing the quotas promised on one cluster (taken after a tenant's lock, never before). */
export function capacityLock(clusterId: string): LockName {
  return { kind: 'capacity', key: `tenantry:capacity:${clusterId}`, label: `the capacity of cluster ${clusterId}` };
}

/** Held by the server running a fleet operation, for as long as its session lives (text key, hashed). */
export const operationLockKey = (operationId: string): string => `tenantry:operation:${operationId}`;

/** Held by the server running a tenant move, for as long as its session lives (text key, hashed); taken before the move's row exists. */
export const moveLockKey = (moveId: string): string => `tenantry:move:${moveId}`;

/** Held while a template database is prepared (text key, hashed), on the cluster that holds it. */
export const templateLockKey = (templateDatabase: string): string => `tenantry:template:${templateDatabase}`;

/** Taken in a tenant or template database while its schema moves (one per database). */
export const SCHEMA_MIGRATION_LOCK = 0x7e4a4e7an;

/** Prisma's own migration lock in the control database, so `prisma migrate deploy` and Tenantry never migrate at once. */
export const PRISMA_MIGRATE_LOCK = 72707369n;
