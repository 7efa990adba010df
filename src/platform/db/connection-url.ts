/** The same server, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

export function describeServer(url: string): { host: string; port: number; user: string; database: string } {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    database: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
  };
}

/** A URL with its password hidden, for logs and messages. */
export function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

export function buildConnectionString(p: { host: string; port: number; user: string; password: string; database: string }): string {
  const u = new URL('postgresql://localhost');
  u.hostname = p.host;
  u.port = String(p.port);
  u.username = encodeURIComponent(p.user);
  u.password = encodeURIComponent(p.password);
  u.pathname = `/${encodeURIComponent(p.database)}`;
  return u.toString();
}
