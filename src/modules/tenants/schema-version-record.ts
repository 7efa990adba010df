import type pg from 'pg';

/** The component a tenant template's version is recorded under in `__SchemaVersion`. */
export const TENANT_COMPONENT = 'Tenant';

export interface SchemaVersionRow {
  version: string;
  appliedAt: Date;
  appliedBy: string | null;
  description: string | null;
}

/** Why `__SchemaVersion` cannot be trusted in this database (null: it can). */
export class SchemaVersionTableError extends Error {}

/**
 * `__SchemaVersion` as it must be before the control plane reads it: a plain table owned by
 * the control plane, without rules or row-level security. A view, or a table with policies,
 * would run code of whoever made it inside our SELECT.
 */
const CHECK_TABLE = `SELECT c.relkind, c.relowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER) AS ours,
    c.relhasrules, c.relrowsecurity, pg_catalog.pg_get_userbyid(c.relowner) AS owner
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relname = '__SchemaVersion'`;

/**
 * Checks `__SchemaVersion` from the catalog, then takes a lock on it (so it cannot be swapped
 * between the check and the read) and checks again, inside the caller's transaction. Throws
 * SchemaVersionTableError when it is missing or is not the control plane's plain table;
 * nothing is locked or read through a relation that is not.
 */
export async function lockSchemaVersionTable(client: pg.ClientBase): Promise<void> {
  await checkSchemaVersionTable(client);
  // LOCK resolves the name once; dropping or replacing the relation now needs a conflicting lock.
  await client.query('LOCK TABLE public."__SchemaVersion" IN ACCESS SHARE MODE');
  await checkSchemaVersionTable(client);
}

async function checkSchemaVersionTable(client: pg.ClientBase): Promise<void> {
  const { rows } = await client.query<{ relkind: string; ours: boolean; relhasrules: boolean; relrowsecurity: boolean; owner: string }>(CHECK_TABLE);
  const t = rows[0];
  if (!t) throw new SchemaVersionTableError('__SchemaVersion is missing');
  if (t.relkind !== 'r') throw new SchemaVersionTableError(`__SchemaVersion is not a table (relkind ${t.relkind}): it was replaced`);
  if (!t.ours) throw new SchemaVersionTableError(`__SchemaVersion belongs to ${t.owner}, not to the control plane: it was replaced`);
  if (t.relhasrules || t.relrowsecurity) throw new SchemaVersionTableError('__SchemaVersion has rules or row-level security: it was tampered with');
}

/** Inside the caller's transaction: the tenant database's own record of its version (the truth), once the table is known to be ours. */
export async function readSchemaVersionIn(client: pg.ClientBase): Promise<SchemaVersionRow | null> {
  await lockSchemaVersionTable(client);
  const { rows } = await client.query<{ Version: string; AppliedAt: Date; AppliedBy: string | null; Description: string | null }>(
    `SELECT "Version", "AppliedAt", "AppliedBy", "Description" FROM public."__SchemaVersion" WHERE "Component" = $1::pg_catalog.text`,
    [TENANT_COMPONENT],
  );
  const r = rows[0];
  return r ? { version: r.Version, appliedAt: r.AppliedAt, appliedBy: r.AppliedBy, description: r.Description } : null;
}

/** The same, in a read-only transaction of its own (the client must not be in one). */
export async function readSchemaVersion(client: pg.ClientBase): Promise<SchemaVersionRow | null> {
  await client.query('BEGIN READ ONLY');
  try {
    return await readSchemaVersionIn(client);
  } finally {
    await client.query('ROLLBACK');
  }
}
