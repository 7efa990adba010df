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
  const parts: string[] = [];
  const set = (name: string, value: string) => {
    // libpq splits `options` on spaces; a backslash escapes one. Our values have none, but stay safe.
    parts.push(`-c ${name}=${value.replace(/([\\ ])/g, '\\$1')}`);
  };
  if (settings.searchPath !== undefined) set('search_path', settings.searchPath);
  if (settings.statementTimeoutMs !== undefined) set('statement_timeout', String(settings.statementTimeoutMs));
  if (settings.lockTimeoutMs !== undefined) set('lock_timeout', String(settings.lockTimeoutMs));
  return parts.join(' ');
}
