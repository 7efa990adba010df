import format from 'pg-format';

/**
 * The schema extensions live in, in every tenant database: owned by the control plane, with
 * USAGE for everyone and CREATE for nobody else. Extension scripts run with their schema as
 * search_path (as the bootstrap superuser, for trusted extensions): a schema a tenant could
 * create objects in would let it plant what those scripts resolve.
 */
export const EXTENSION_SCHEMA = 'extensions';

export const installedExtensions = `SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema, e.extrelocatable AS relocatable
  FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace`;

export const createExtensionSchema = format('CREATE SCHEMA IF NOT EXISTS %1$I; REVOKE ALL ON SCHEMA %1$I FROM PUBLIC; GRANT USAGE ON SCHEMA %1$I TO PUBLIC', EXTENSION_SCHEMA);

export const moveExtension = (name: string) => format('ALTER EXTENSION %I SET SCHEMA %I', name, EXTENSION_SCHEMA);
