// Catalog reads of the inventory: nothing a tenant made is ever read as the control plane.

/** Whether a database exists (on the cluster's maintenance connection). */
export const databasePresent = `SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1`;

/** Which of the template's tables exist in `public` (catalog only). */
export const presentTables = `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1::pg_catalog.text[])`;
