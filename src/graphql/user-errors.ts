import { UserError, USER_ERROR_CODES, type UserErrorCode } from '../platform/errors.js';
import { findInputProblem } from '../platform/input-limits.js';
import { builder } from './builder.js';

export interface UserErrorShape {
  code: UserErrorCode;
  field: string | null;
  message: string;
}

export const UserErrorCodeEnum = builder.enumType('UserErrorCode', { values: USER_ERROR_CODES });

export const UserErrorRef = builder.objectRef<UserErrorShape>('UserError').implement({
  description: 'An expected failure: invalid input, not found, a collision. Unexpected failures are GraphQL errors.',
  fields: (t) => ({
    code: t.field({ type: UserErrorCodeEnum, resolve: (e) => e.code }),
    field: t.exposeString('field', { nullable: true, description: 'The input field at fault, when there is one.' }),
    message: t.exposeString('message'),
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
 */
export async function withUserErrors<T extends object>(input: unknown, fn: () => Promise<T>, onUserError?: (e: UserError) => Promise<Partial<T>>): Promise<Payload<T>> {
  const problem = findInputProblem(input);
  if (problem) return { userErrors: [{ code: 'INVALID_INPUT', field: problem.field, message: problem.message }] } as Payload<T>;
  try {
    return { ...(await fn()), userErrors: [] };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const partial = onUserError ? await onUserError(err) : {};
    return { ...partial, userErrors: [userErrorShape(err)] } as Payload<T>;
  }
}

