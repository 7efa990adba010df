import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gzip } from 'node:zlib';

/** Where `npm run build:dashboard` writes the app: relative to the package, not to the working directory. */
export const BUILT_DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/dist/', import.meta.url));

export const DASHBOARD_PATH = '/dashboard';

const HEADERS = {
  // The app is one module script and one stylesheet from this origin; it talks only to /graphql here
  // ('self' covers ws:/wss: to this host under CSP3, which graphql-ws needs).
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.json', '.map', '.svg', '.txt']);

type Encoding = 'br' | 'gzip';
const compressors: Record<Encoding, (body: Buffer) => Promise<Buffer>> = {
  br: (body) => promisify(brotliCompress)(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY } }),
  gzip: (body) => promisify(gzip)(body, { level: 9 }),
};

/** A file as sent: its bytes in one encoding, and the validator they answer conditional requests with. */
interface Representation {
  body: Buffer;
  etag: string;
}

/**
 * The dashboard's static files at /dashboard/ (a 301 from /dashboard): hashed assets cached for
 * good, index.html revalidated, text compressed (a precompressed .br/.gz beside the file wins,
 * otherwise compressed once and kept), and every path that is not a file answered with
 * index.html, for the app's own routes (/dashboard/tenants/<slug>). Only files inside `dir`
 * are ever read. Returns false when the request is not for the dashboard.
 */
export function dashboardServer(dir: string): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const root = resolve(dir);
  // Keyed by path, encoding, size and mtime: a rebuild (new sizes and times) is picked up without a restart.
  const cache = new Map<string, Representation>();

  async function representation(file: string, size: number, mtimeMs: number, encoding: Encoding | null): Promise<Representation> {
    const key = `${file}\0${encoding}\0${size}\0${mtimeMs}`;
    let found = cache.get(key);
    if (!found) {
      const body = encoding ? await precompressed(file, encoding, mtimeMs) ?? await compressors[encoding](await readFile(file)) : await readFile(file);
      found = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
      cache.set(key, found);
    }
    return found;
  }

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://tenantry');
    if (url.pathname !== DASHBOARD_PATH && !url.pathname.startsWith(`${DASHBOARD_PATH}/`)) return false;
    const send = (status: number, headers: Record<string, string | number>, body?: Buffer | string) => {
      res.writeHead(status, { ...HEADERS, ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const plain = (status: number, message: string, headers: Record<string, string> = {}) =>
      send(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers }, `${message}\n`);

    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, 'the dashboard answers GET and HEAD', { allow: 'GET, HEAD' }), true;
    if (url.pathname === DASHBOARD_PATH) return plain(301, 'moved to /dashboard/', { location: `${DASHBOARD_PATH}/${url.search}` }), true;

    const index = await fileAt(root, 'index.html');
    if (!index) return plain(503, 'the dashboard is not built: npm run build:dashboard'), true;

    const relative = safeRelativePath(url.pathname.slice(DASHBOARD_PATH.length + 1));
    if (relative === null) return plain(400, 'not a dashboard path'), true;
    let target = relative === '' ? index : await fileAt(root, relative);
    if (!target) {
      // A missing file (an asset of an older build) is a 404; anything else is one of the app's routes.
      if (extname(relative) !== '' || relative.startsWith('assets/')) return plain(404, 'no such dashboard file'), true;
      target = index;
    }

    const extension = extname(target.path);
    const encoding = COMPRESSIBLE.has(extension) ? preferredEncoding(req.headers['accept-encoding']) : null;
    const { body, etag } = await representation(target.path, target.size, target.mtimeMs, encoding);
    const headers: Record<string, string | number> = {
      'content-type': TYPES[extension] ?? 'application/octet-stream',
      // Vite names assets by their content hash; index.html names the current ones.
      'cache-control': target.path.startsWith(resolve(root, 'assets') + sep) ? 'public, max-age=31536000, immutable' : 'no-cache',
      etag,
      vary: 'Accept-Encoding',
    };
    if (encoding) headers['content-encoding'] = encoding;
    if (req.headers['if-none-match']?.split(/\s*,\s*/).includes(etag)) return send(304, headers), true;
    send(200, { ...headers, 'content-length': body.length }, body);
    return true;
  };
}

/**
 * The path under /dashboard/ as a relative file path, or null when it could leave the directory
 * or name a hidden file: decoded once (so %2e%2e and %2f are seen for what they are), then every
 * segment checked.
 */
function safeRelativePath(encoded: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/');
  if (segments.some((s, i) => s.startsWith('.') || (s === '' && i < segments.length - 1))) return null;
  return decoded;
}

/** A regular file inside root (symlinks followed, then checked again), or null. */
async function fileAt(root: string, relative: string): Promise<{ path: string; size: number; mtimeMs: number } | null> {
  try {
    const [realRoot, path] = await Promise.all([realpath(root), realpath(resolve(root, relative))]);
    if (!path.startsWith(realRoot + sep)) return null;
    const stats = await stat(path);
    return stats.isFile() ? { path, size: stats.size, mtimeMs: stats.mtimeMs } : null;
  } catch (err) {
    if (['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw err;
  }
}

/** file.br / file.gz written by the build, when it is as new as the file. */
async function precompressed(file: string, encoding: Encoding, mtimeMs: number): Promise<Buffer | null> {
  const sibling = `${file}.${encoding === 'br' ? 'br' : 'gz'}`;
  try {
    if ((await stat(sibling)).mtimeMs < mtimeMs) return null;
    return await readFile(sibling);
  } catch {
    return null;
  }
}

/** br when the client takes it, else gzip, else none (q=0 refuses an encoding). */
function preferredEncoding(header: string | undefined): Encoding | null {
  const accepted = new Set(
    (header ?? '')
      .split(',')
      .map((part) => part.trim().split(/\s*;\s*/))
      .filter(([, q]) => !q || !/^q=0(\.0*)?$/.test(q))
      .map(([name]) => name!.toLowerCase()),
  );
  if (accepted.has('br')) return 'br';
  if (accepted.has('gzip')) return 'gzip';
  return null;
}
