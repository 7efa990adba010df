import { UserError, type UserErrorCode } from '../platform/errors.js';
import { findInputProblem } from '../platform/input-limits.js';
import { builder } from './builder.js';
import { describedValues } from './enum-values.js';
import { assertDeclaredCode, type MutationName } from './mutation-errors.js';

export interface UserErrorShape {
  code: UserErrorCode;
  field: string | null;
  message: string;
}

const CODE_DESCRIPTIONS: Record<UserErrorCode, string> = {
  INVALID_INPUT: 'An input value is malformed or out of bounds (field names it).',
  INVALID_SLUG: 'The slug is not 2 to 40 characters of lowercase letters, digits, "-", "." and "_" starting with a letter or digit.',
  SLUG_TAKEN: 'Another tenant already has this slug.',
  NAME_COLLISION: 'The database or role name the slug leads to is already in use on the cluster.',
  NOT_FOUND: 'No such object, or the key may not see it.',
  QUOTA_OUT_OF_RANGE: 'maxConnections is outside QUOTA_MIN to QUOTA_MAX.',
  CLUSTER_CAPACITY_EXCEEDED: 'The cluster has no room for the quota (its tenants\' quotas would exceed what it can allocate).',
  FORBIDDEN: 'The key may not do this (e.g. a TENANT_ADMIN creating an ADMIN key).',
  CONFIRMATION_MISMATCH: 'The confirmation does not repeat the slug.',
  TEMPLATE_NOT_FOUND: 'No such schema template or template version.',
  EXTENSION_UNAVAILABLE: 'The extension is not offered on the cluster, not allowed by policy, or needs a superuser to install.',
  TENANT_BUSY: 'Another request holds the tenant (or its lock was lost mid-change): retry in a moment.',
  INVALID_STATE: 'The tenant\'s status forbids the call (e.g. FAILED, DEPROVISIONING, DEPROVISIONED): retrying does not help.',
  EXTENSION_UNSAFE_SCHEMA: 'The extension lives in a schema the tenant can create objects in and cannot be moved out of it: it is not updated there.',
  EXTENSION_NOT_OWNED: 'The extension belongs to another role (e.g. a superuser): only its owner or a superuser can update it.',
  TIMEOUT: 'The control plane is busy (no connection came free in time): retry in a moment.',
  PROVISIONING_FAILED: 'Provisioning failed on the cluster; what it created was dropped and the tenant is FAILED (provisionTenant again retries).',
  UPGRADE_FAILED: 'A schema step failed and was rolled back; the steps before it stay applied (see failedStep).',
  CLUSTER_UNREACHABLE: 'A cluster could not be reached (its URL, its environment variable, or the server is down); nothing was stored or changed.',
  CLUSTER_UNSUITABLE: 'The server is not one Tenantry can manage: its version is outside 15 to 18, or the control plane lacks a privilege there (the message names it).',
  CLUSTER_NOT_EMPTY: 'The cluster still holds tenants (move them away, e.g. drainCluster) or the control database.',
  PLACEMENT_FAILED: 'No ACTIVE cluster matches the placement, or none that does has room for the quota (the message names each candidate and its room).',
  MOVE_PREFLIGHT_FAILED: 'The move cannot start: the message lists what stops it (e.g. tables without a replica identity, wal_level, missing extensions, no room).',
  MOVE_FAILED: 'The move failed and was rolled back: the tenant serves from its source cluster as before.',
  DUMP_TOOL_UNAVAILABLE: 'An OFFLINE move needs pg_dump and pg_restore of a major version at least the servers\'; the message names the versions needed and found.',
};

export const UserErrorCodeEnum = builder.enumType('UserErrorCode', {
  description: 'Why a mutation was refused: what the client can act on.',
  values: describedValues(CODE_DESCRIPTIONS),
});

export const UserErrorRef = builder.objectRef<UserErrorShape>('UserError').implement({
  description: 'An expected failure: invalid input, not found, a collision. Unexpected failures are GraphQL errors.',
  fields: (t) => ({
    code: t.field({ type: UserErrorCodeEnum, description: 'What kind of failure, for the client to act on.', resolve: (e) => e.code }),
    field: t.exposeString('field', { nullable: true, description: 'The input field at fault, when there is one.' }),
    message: t.exposeString('message', { description: 'What went wrong, in English, for people.' }),
  }),
});

export type Payload<T> = Partial<T> & { userErrors: UserErrorShape[] };

export function userErrorShape(e: UserError): UserErrorShape {
  return { code: e.code, field: e.field ?? null, message: e.message };
}

/**
 * Runs a mutation; a UserError becomes `userErrors`, anything else stays an (unexpected,
 * masked) error. The input is checked first (no NUL character, no string over its field's
 * length: INVALID_INPUT naming the field), so a bad value never reaches a half-done change.
 * A code the mutation did not declare in MUTATION_ERROR_CODES is refused (thrown).
 */
export async function withUserErrors<T extends object>(
  mutation: MutationName,
  input: unknown,
  fn: () => Promise<T>,
  onUserError?: (e: UserError) => Promise<Partial<T>>,
): Promise<Payload<T>> {
  const problem = findInputProblem(input);
  if (problem) {
    assertDeclaredCode(mutation, 'INVALID_INPUT');
    return { userErrors: [{ code: 'INVALID_INPUT', field: problem.field, message: problem.message }] } as Payload<T>;
  }
  try {
    return { ...(await fn()), userErrors: [] };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    assertDeclaredCode(mutation, err.code);
    const partial = onUserError ? await onUserError(err) : {};
    return { ...partial, userErrors: [userErrorShape(err)] } as Payload<T>;
  }
}

