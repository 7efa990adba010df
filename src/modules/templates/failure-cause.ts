import { sqlStateOf } from '../../platform/db/sql-state.js';
import { UserError, type UserErrorCode } from '../../platform/errors.js';
import { SchemaVersionTableError } from '../tenants/index.js';
import { StepRunnerTamperedError, UnsafeCommitError } from './tenant-executor.js';

/**
 * Why a fleet operation's step failed on one tenant:
 *   TENANT  the tenant's own objects, data or sessions are in the way; other tenants are not
 *           affected, so a canary failing this way is replaced by the next tenant;
 *   STEP    anything else: the step (or the server) is likely broken for everyone, so a canary
 *           failing this way stops the operation.
 */
export type FailureCause = 'TENANT' | 'STEP';

/**
 * SQLSTATEs that mean the tenant's database is in the way of a correct step:
 * duplicate objects it made first, locks its sessions held past lock_timeout (or
 * statement_timeout), objects of its own that depend on what the step drops, and data
 * that breaks a constraint the step adds (class 23).
 */
const TENANT_SQLSTATES = new Set([
  '42701', // duplicate_column
  '42P07', // duplicate_table (and index, sequence, view)
  '42710', // duplicate_object
  '42723', // duplicate_function
  '42P06', // duplicate_schema
  '55P03', // lock_not_available
  '55006', // object_in_use
  '57014', // query_canceled (statement_timeout while waiting)
  '40P01', // deadlock_detected
  '40001', // serialization_failure
  '2BP01', // dependent_objects_still_exist
]);

/** User errors that come from the tenant's state or its own objects, not from the step. */
const TENANT_USER_ERRORS = new Set<UserErrorCode>(['TENANT_BUSY', 'INVALID_STATE', 'NOT_FOUND', 'INVALID_INPUT', 'EXTENSION_UNSAFE_SCHEMA', 'EXTENSION_NOT_OWNED', 'MOVE_PREFLIGHT_FAILED']);

export function failureCauseOf(err: unknown): FailureCause {
  if (err instanceof UserError) return TENANT_USER_ERRORS.has(err.code) ? 'TENANT' : 'STEP';
  // The tenant's code changed the step runner, holds deferrable constraints, or replaced __SchemaVersion.
  if (err instanceof StepRunnerTamperedError || err instanceof UnsafeCommitError || err instanceof SchemaVersionTableError) return 'TENANT';
  const state = sqlStateOf(err);
  if (state && (TENANT_SQLSTATES.has(state) || state.startsWith('23'))) return 'TENANT';
  return 'STEP';
}
