import { UserError } from '../../platform/errors.js';

/** Lowercase letters, digits, `-`, `.`, `_`; 2 to 40 characters; starts with a letter or digit. ASCII only. */
const SLUG = /^[a-z0-9][a-z0-9._-]{1,39}$/;

export function validateSlug(slug: string): void {
  if (!SLUG.test(slug)) {
    throw new UserError(
      'INVALID_SLUG',
      'A slug is 2 to 40 characters of lowercase letters, digits, "-", "." and "_", starting with a letter or digit',
      'slug',
    );
  }
}

/**
 * The database and role name of a tenant: the prefix plus the slug with every
 * non-alphanumeric character turned into `_` (so `acme-dev` and `acme.dev` collide).
 */
export function tenantObjectName(prefix: string, slug: string): string {
  return prefix + slug.replace(/[^a-z0-9]/g, '_');
}

/**
 * A tenant's read-only roles are named `<tenant role>.ro.<hex>` (src/modules/credentials): the
 * part before the mark names the tenant whose quota a session counts against.
 */
const READ_ONLY_MARK = '.ro.';

export function readOnlyRoleName(tenantRole: string, suffix: string): string {
  return `${tenantRole}${READ_ONLY_MARK}${suffix}`;
}

/** The tenant role a login role belongs to: itself, or the tenant of a read-only role. */
export function tenantRoleOf(role: string): string {
  return role.split(READ_ONLY_MARK, 1)[0]!;
}

/** The same in SQL, over pg_stat_activity's `usename`. */
export const SESSION_TENANT_ROLE = `pg_catalog.split_part(usename, '${READ_ONLY_MARK}', 1)`;

/** SQL: the role names of a tenant's read-only roles start with this, after the tenant's role name ($1). */
export const READ_ONLY_PREFIX_OF = `$1::pg_catalog.text || '${READ_ONLY_MARK}'`;

/** Control characters (NUL above all: PostgreSQL text cannot hold it) have no place in names and reasons. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Trimmed, 1 to `max` characters, no control characters. */
export function validateText(value: string, field: string, max: number): string {
  const text = value.trim();
  if (text.length === 0 || text.length > max) throw new UserError('INVALID_INPUT', `${field} must be 1 to ${max} characters`, field);
  if (CONTROL.test(text)) throw new UserError('INVALID_INPUT', `${field} must not contain control characters (such as NUL)`, field);
  return text;
}
