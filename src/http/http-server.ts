import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Config } from '../config.js';
import type { Deps } from '../domain/deps.js';
import { checkReadiness } from '../domain/health/readiness.js';
import { RateLimitedError } from '../domain/keys/key-authenticator.js';
import { sourceAddressOf } from '../graphql/context.js';
import { createTenantryYoga } from '../graphql/yoga.js';
import { serveWebSockets } from './websocket.js';

/**
 * GraphQL over HTTP, SSE and WebSocket on /graphql and /health/live on PORT; /metrics and
 * /health/ready there too, or only on INTERNAL_HOST:INTERNAL_PORT when that is set, and
 * behind an ADMIN key with INTERNAL_ENDPOINTS_AUTH=admin.
 */
export async function serve(deps: Deps, config: Config): Promise<{ server: Server; websockets: { close(): Promise<void> } }> {
  const yoga = createTenantryYoga(deps);
  const separate = config.INTERNAL_PORT !== undefined;
  const server: Server = createServer(async (req, res) => {
    if (pathOf(req) === '/health/live') return live(res);
    if (!separate && (await serveInternal(deps, req, res).catch((err) => failed(deps, res, err)))) return;
    return yoga(req, res);
  });
  await listen(server, config.PORT, config.HOST);
  if (separate) {
    const internal = createServer(async (req, res) => {
      if (pathOf(req) === '/health/live') return live(res);
      if (await serveInternal(deps, req, res).catch((err) => failed(deps, res, err))) return;
      json(res, 404, { error: 'not found: this address serves /metrics, /health/ready and /health/live' });
    });
    await listen(internal, config.INTERNAL_PORT!, config.INTERNAL_HOST).catch(async (err) => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    });
    // The internal address lives and dies with the public one (whoever closes the server).
    server.once('close', () => {
      internal.closeAllConnections();
      internal.close();
    });
  }
  return { server, websockets: serveWebSockets(server, yoga, deps) };
}

function failed(deps: Deps, res: ServerResponse, err: unknown): true {
  const correlationId = randomUUID();
  deps.logger.error({ err, correlationId }, 'internal endpoint failed');
  if (!res.headersSent) json(res, 500, { error: `unexpected error; correlation id ${correlationId}` });
  else res.end();
  return true;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://tenantry').pathname;
}

function live(res: ServerResponse): void {
  json(res, 200, { status: 'ok' });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** /metrics and /health/ready: true when the request was one of them (and was answered). */
async function serveInternal(deps: Deps, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const path = pathOf(req);
  if (path !== '/metrics' && path !== '/health/ready') return false;
  if (deps.config.INTERNAL_ENDPOINTS_AUTH === 'admin' && !(await adminOnly(deps, req, res))) return true;
  if (path === '/metrics') {
    res.writeHead(200, { 'content-type': deps.metrics.registry.contentType }).end(await deps.metrics.registry.metrics());
  } else {
    const report = await checkReadiness(deps);
    json(res, report.ready ? 200 : 503, report);
  }
  return true;
}

/** Lets the request through with an ADMIN key; otherwise answers 401, 403 or 429 and returns false. */
async function adminOnly(deps: Deps, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? (v[0] ?? null) : (v ?? null);
  };
  try {
    const { viewer, authFailure } = await deps.auth.authenticate({
      authorization: header('authorization'),
      sourceAddress: sourceAddressOf(deps.config, req.socket.remoteAddress, header('x-forwarded-for')),
      transport: 'internal-http',
      correlationId: randomUUID(),
    });
    if (viewer?.role === 'ADMIN') return true;
    if (viewer) json(res, 403, { error: 'an ADMIN key is required (INTERNAL_ENDPOINTS_AUTH=admin)', code: 'FORBIDDEN' });
    else json(res, 401, { error: `an ADMIN key is required (INTERNAL_ENDPOINTS_AUTH=admin): ${authFailure}`, code: 'UNAUTHENTICATED' }, { 'www-authenticate': 'Bearer' });
  } catch (err) {
    if (!(err instanceof RateLimitedError)) throw err;
    json(res, 429, { error: err.message, code: 'RATE_LIMITED' }, { 'retry-after': String(err.retryAfterSeconds) });
  }
  return false;
}
