/** Codes of expected failures, returned to clients in `userErrors`. */
export const USER_ERROR_CODES = [
  'INVALID_INPUT',
  'INVALID_SLUG',
  'SLUG_TAKEN',
  'NAME_COLLISION',
  'NOT_FOUND',
  'QUOTA_OUT_OF_RANGE',
  'CLUSTER_CAPACITY_EXCEEDED',
  'FORBIDDEN',
  'CONFIRMATION_MISMATCH',
  'TEMPLATE_NOT_FOUND',
  'EXTENSION_UNAVAILABLE',
  /** Another request holds the tenant (or its lock was lost mid-change): retry in a moment. */
  'TENANT_BUSY',
  /** The tenant's state forbids the call (FAILED, DEPROVISIONING, DEPROVISIONED): retrying does not help. */
  'INVALID_STATE',
  /** An extension lives in a schema the tenant can create objects in and cannot be moved out of it: it is not updated there. */
  'EXTENSION_UNSAFE_SCHEMA',
  /** An extension belongs to another role (a superuser that ran Tenantry before): only its owner or a superuser can update it. */
  'EXTENSION_NOT_OWNED',
  'TIMEOUT',
  'PROVISIONING_FAILED',
  'UPGRADE_FAILED',
  /** A cluster could not be reached (registerCluster, updateCluster, a move's target or source). */
  'CLUSTER_UNREACHABLE',
  /** A cluster's server is not one Tenantry can manage: version outside 15–18, or the control plane lacks a privilege there (the message names it). */
  'CLUSTER_UNSUITABLE',
  /** removeCluster of a cluster that still holds tenants (or the control database). */
  'CLUSTER_NOT_EMPTY',
  /** No cluster matches the placement asked for, or none of those that do has room (the message names each candidate and its room). */
  'PLACEMENT_FAILED',
  /** A move's preflight found what stops it (the message lists every problem). */
  'MOVE_PREFLIGHT_FAILED',
  /** A move failed and was rolled back: the tenant serves from its source. */
  'MOVE_FAILED',
  /** An OFFLINE move needs pg_dump/pg_restore of a major version at least the servers': none is installed (the message names both). */
  'DUMP_TOOL_UNAVAILABLE',
] as const;

export type UserErrorCode = (typeof USER_ERROR_CODES)[number];

/** An expected failure the caller can act on: bad input, not found, a collision. */
export class UserError extends Error {
  constructor(
    readonly code: UserErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'UserError';
  }
}
