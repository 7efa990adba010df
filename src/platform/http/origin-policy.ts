import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { CORSOptions } from 'graphql-yoga';

/**
 * The browser origins that may call the API (CORS_ORIGINS): any (`*`), or the listed ones
 * besides the service's own origin. A request without an Origin header is not a browser's
 * cross-site request (or is a same-origin GET) and is not judged.
 */
export type AllowedOrigins = { any: true } | { any: false; origins: ReadonlySet<string> };

export const ANY_ORIGIN: AllowedOrigins = { any: true };
export const SAME_ORIGIN_ONLY: AllowedOrigins = { any: false, origins: new Set() };

/** CORS_ORIGINS: `*`, or comma-separated origins such as `https://console.example.com`. Throws naming a bad entry. */
export function parseAllowedOrigins(value: string): AllowedOrigins {
  const entries = value.split(',').map((e) => e.trim()).filter(Boolean);
  if (entries.includes('*')) return ANY_ORIGIN;
  const origins = new Set<string>();
  for (const entry of entries) {
    const url = URL.canParse(entry) ? new URL(entry) : undefined;
    // An origin is scheme, host and port only: a path or a trailing slash would never match a browser's Origin header.
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.origin !== entry.toLowerCase()) {
      throw new Error(`"${entry}" is not an origin (scheme://host[:port], no path, e.g. https://console.example.com); CORS_ORIGINS takes * or a comma-separated list of origins`);
    }
    origins.add(url.origin);
  }
  return { any: false, origins };
}

/** The request's own origin, as far as the Host header tells (scheme aside: a TLS proxy may sit in front). */
function isSameOrigin(origin: string, host: string | null | undefined): boolean {
  // "null" (a sandboxed frame, a file) is no origin of ours.
  return host != null && URL.canParse(origin) && new URL(origin).host === host.toLowerCase();
}

export function originAllowed(allowed: AllowedOrigins, origin: string | null | undefined, host: string | null | undefined): boolean {
  if (!origin || allowed.any) return true;
  return allowed.origins.has(origin.toLowerCase()) || isSameOrigin(origin, host);
}

/** Response headers a browser script may read: the correlation id of an error, and when to retry. */
const EXPOSED_HEADERS = ['x-correlation-id', 'retry-after'];

/**
 * yoga's `cors` option: an allowed origin is echoed back (with Vary: Origin); any other gets no
 * CORS headers, so the browser keeps the response from the page. Credentials are allowed for
 * listed origins only, never with `*`.
 */
export function corsOptionsFor(allowed: AllowedOrigins): (request: Request) => CORSOptions {
  return (request) => {
    const origin = request.headers.get('origin');
    if (!originAllowed(allowed, origin, request.headers.get('host'))) return false;
    return { credentials: !allowed.any, exposedHeaders: EXPOSED_HEADERS };
  };
}

/**
 * ws's `verifyClient`: browsers apply no CORS to WebSocket, so the upgrade itself is refused
 * (403) for an origin that is not allowed.
 */
export function verifyWebSocketOrigin(allowed: AllowedOrigins) {
  return (info: { req: IncomingMessage }, accept: (ok: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void): void => {
    const origin = info.req.headers.origin;
    if (originAllowed(allowed, origin, info.req.headers.host)) return accept(true);
    accept(false, 403, `origin ${origin} is not allowed (CORS_ORIGINS)`, { 'Content-Type': 'text/plain' });
  };
}
