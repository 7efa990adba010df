import pg from 'pg';

/**
 * Settings every connection the control plane opens starts with, sent as libpq `options`
 * in the startup packet. Settings from the startup packet take precedence over
 * `ALTER DATABASE ... SET` and `ALTER ROLE ... SET`, so nothing a tenant configures in its
 * database or on its role can change them for our sessions.
 */
export interface SessionSettings {
  /** Fixed `pg_catalog, pg_temp` for managed clusters: no name of ours resolves to a tenant's object. */
  searchPath?: string;
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
}

/** Where control-plane sessions inside managed clusters look names up: the catalog only (temporary objects last). */
export const CATALOG_SEARCH_PATH = 'pg_catalog,pg_temp';

/** The `options` startup parameter for these settings. */
export function startupOptions(settings: SessionSettings): string {
  const values = { search_path: settings.searchPath, statement_timeout: settings.statementTimeoutMs, lock_timeout: settings.lockTimeoutMs };
  return Object.entries(values)
    .filter(([, value]) => value !== undefined)
    // libpq splits `options` on spaces; a backslash escapes one. Our values have none, but stay safe.
    .map(([name, value]) => `-c ${name}=${String(value).replace(/([\\ ])/g, '\\$1')}`)
    .join(' ');
}

/**
 * Runs `fn` on a session of its own to `url` that looks names up in the catalog only (for
 * start-up checks and the switch script's reads), closed afterwards whatever happens.
 */
export async function withCatalogSession<T>(url: string, p: { applicationName?: string; connectTimeoutMs?: number }, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await openCatalogSession(url, p);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A connected session as withCatalogSession's, for a caller that hands it on (and ends it). */
export async function openCatalogSession(url: string, p: { applicationName?: string; connectTimeoutMs?: number }): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    application_name: p.applicationName ?? 'tenantry-admin',
    options: startupOptions({ searchPath: CATALOG_SEARCH_PATH }),
    connectionTimeoutMillis: p.connectTimeoutMs,
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}
