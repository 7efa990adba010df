import format from 'pg-format';
import { EXTENSION_SCHEMA } from '../tenants/index.js';

// The extensions schema itself (EXTENSION_SCHEMA, createExtensionSchema), and what is installed
// where (installedExtensions, moveExtension), are the tenants module's: securing a tenant
// database sets them up (src/modules/tenants/extension-schema.sql.ts).

export const availableExtensionVersions = `SELECT name, version FROM pg_catalog.pg_available_extension_versions WHERE name = ANY($1::pg_catalog.text[])`;

/** What the server offers: each extension with its default and every installable version. */
export const availableExtensions = `SELECT e.name, e.default_version, e.comment, pg_catalog.array_agg(v.version::pg_catalog.text ORDER BY v.version) AS versions
  FROM pg_catalog.pg_available_extensions e JOIN pg_catalog.pg_available_extension_versions v ON v.name = e.name
  GROUP BY e.name, e.default_version, e.comment ORDER BY e.name`;

export const createExtension = (name: string, version: string) =>
  format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA %I VERSION %L', name, EXTENSION_SCHEMA, version);

export const updateExtension = (name: string, version: string) => format('ALTER EXTENSION %I UPDATE TO %L', name, version);

/**
 * Extensions only their owner (or a superuser) may update and the control plane cannot act
 * for: one a superuser control plane installed (PostgreSQL cannot hand an extension over).
 */
export const extensionsNotOurs = `SELECT e.extname AS name, pg_catalog.pg_get_userbyid(e.extowner) AS owner
  FROM pg_catalog.pg_extension e WHERE NOT pg_catalog.pg_has_role(CURRENT_USER, e.extowner, 'USAGE')`;
