/**
 * The longest value each named input field may hold, in characters. A field not named
 * here is held to DEFAULT_MAX_LENGTH. Slugs are not named: validateSlug says more than a
 * length could (INVALID_SLUG), and the default bound is enough to keep them sane.
 */
export const INPUT_LIMITS: Readonly<Record<string, number>> = {
  displayName: 200,
  name: 100,
  reason: 500,
  confirm: 40,
  tenantSlug: 40,
  template: 63,
  templateVersion: 32,
  targetVersion: 32,
  search: 100,
  id: 200,
  action: 100,
  category: 100,
  // Cursors carry a sort value (a display name of up to 200 characters) and an id, base64url-encoded.
  after: 4000,
  before: 4000,
};

export const DEFAULT_MAX_LENGTH = 1000;

export interface InputProblem {
  field: string;
  message: string;
}

/**
 * What no domain step may receive, found before anything is changed: a NUL character
 * anywhere (PostgreSQL cannot store it in text and would fail mid-way) or a string longer
 * than its field allows. The first such string in `value` (objects and lists included), with
 * its field as `a.b` for nested ones; mutations answer it as INVALID_INPUT.
 */
export function findInputProblem(value: unknown, path = ''): InputProblem | null {
  if (typeof value === 'string') {
    const field = path || 'input';
    if (value.includes('\u0000')) return { field, message: `${field} must not contain NUL characters (\\u0000)` };
    // Limits are by the field's own name: `a.b[2]` is held to b's.
    const max = INPUT_LIMITS[field.replace(/\[\d+\]$/, '').split('.').at(-1)!] ?? DEFAULT_MAX_LENGTH;
    if (value.length > max) return { field, message: `${field} must be at most ${max} characters (got ${value.length})` };
    return null;
  }
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    for (const [key, item] of Object.entries(value)) {
      const found = findInputProblem(item, Array.isArray(value) ? `${path}[${key}]` : path ? `${path}.${key}` : key);
      if (found) return found;
    }
  }
  return null;
}
