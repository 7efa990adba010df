import format from 'pg-format';

export const availableExtensionVersions = `SELECT name, version FROM pg_available_extension_versions WHERE name = ANY($1::text[])`;

/** What the server offers: each extension with its default and every installable version. */
export const availableExtensions = `SELECT e.name, e.default_version, e.comment, array_agg(v.version::text ORDER BY v.version) AS versions
  FROM pg_available_extensions e JOIN pg_available_extension_versions v ON v.name = e.name
  GROUP BY e.name, e.default_version, e.comment ORDER BY e.name`;

export const installedExtensions = `SELECT extname AS name, extversion AS version FROM pg_extension`;

export const createExtension = (name: string, version: string) =>
  format('CREATE EXTENSION IF NOT EXISTS %I WITH VERSION %L', name, version);

export const updateExtension = (name: string, version: string) => format('ALTER EXTENSION %I UPDATE TO %L', name, version);
