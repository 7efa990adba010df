import format from 'pg-format';

export const availableExtensionVersions = `SELECT name, version FROM pg_available_extension_versions WHERE name = ANY($1::text[])`;

export const installedExtensions = `SELECT extname AS name, extversion AS version FROM pg_extension`;

export const createExtension = (name: string, version: string) =>
  format('CREATE EXTENSION IF NOT EXISTS %I WITH VERSION %L', name, version);
