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
