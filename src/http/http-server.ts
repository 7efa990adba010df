import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../platform/config.js';
import type { ApiSetup } from '../graphql/context.js';
import { ReadinessMonitor } from '../modules/health/index.js';
import { ApiKeyAuthenticator, RateLimitedError } from '../modules/keys/index.js';
import { TenantryMetrics } from '../platform/metrics.js';
import type { Logger } from '../platform/logger.js';
import { clientAddressOf } from '../platform/http/client-address.js';
import { createTenantryYoga } from '../graphql/yoga.js';
import { RETRY_AFTER_SECONDS, serviceUnavailableError } from '../graphql/service-unavailable.js';
import type { LiveSessions } from '../graphql/live-sessions.js';
import { InFlightWork, SHUTTING_DOWN_RETRY_AFTER_SECONDS, shuttingDownError } from './in-flight-work.js';
import { headerOf, serveWebSockets } from './websocket.js';
import { BUILT_DASHBOARD_DIR, dashboardServer } from './dashboard.js';

/** How long closing waits, once subscriptions are closed, for the last responses to end before cutting connections. */
const DRAIN_MS = 2000;

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://tenantry').pathname;
}

/** While stopping: the process is alive, not ready, and takes no new work (the client retries, here or elsewhere). */
const stopping: Handler = (req, res) => {
  const path = pathOf(req);
  if (path === '/health/live') return json(res, 200, { status: 'ok', phase: 'stopping' });
  // Connection: close, so a kept-alive client reconnects (to another replica, or to this one restarted).
  const headers = { 'retry-after': String(SHUTTING_DOWN_RETRY_AFTER_SECONDS), connection: 'close' };
  if (path === '/health/ready') return json(res, 503, { ready: false, stopping: true }, headers);
  json(res, 503, { errors: [shuttingDownError] }, headers);
};

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is in use: another Tenantry (or another program) is listening there; choose a free port`, { cause: err }) : err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * The HTTP ports, bound first thing at start: a busy port fails the start before anything
 * else (PostgreSQL, the pooler, the admin key) is touched. GraphQL over HTTP, SSE and
 * WebSocket on /graphql, the dashboard on /dashboard/ (DASHBOARD) and /health/live on PORT; /metrics and /health/ready there too, or
 * only on INTERNAL_HOST:INTERNAL_PORT when that is set, and behind an ADMIN key with
 * INTERNAL_ENDPOINTS_AUTH=admin. Until the service is attached, /health/live answers 200
 * and everything else 503 with the start-up phase; once it is stopping, 503 SHUTTING_DOWN.
 */
export class HttpFront {
  private handler: Handler;
  private internalHandler: Handler;
  private websockets: { close(): Promise<void>; readonly sockets: number } | null = null;
  private live: LiveSessions | null = null;
  /** Requests and graphql-ws operations under way: stopping lets them finish (SHUTDOWN_GRACE_MS). */
  readonly work = new InFlightWork();
  phase = 'starting';

  private constructor(
    readonly server: Server,
    readonly url: string,
    private readonly internal: Server | null,
    private readonly logger: Logger,
    private readonly shutdownGraceMs: number,
  ) {
    const starting: Handler = (req, res) => {
      const path = pathOf(req);
      if (path === '/health/live') return json(res, 200, { status: 'ok', phase: this.phase });
      if (path === '/health/ready') return json(res, 503, { ready: false, starting: true, phase: this.phase });
      json(res, 503, { errors: [{ message: `Tenantry is starting (${this.phase}); try again in a moment`, extensions: { code: 'STARTING' } }] });
    };
    this.handler = starting;
    this.internalHandler = starting;
  }

  static async listen(config: Pick<Config, 'PORT' | 'HOST' | 'INTERNAL_PORT' | 'INTERNAL_HOST' | 'SHUTDOWN_GRACE_MS'>, logger: Logger): Promise<HttpFront> {
    let front: HttpFront | undefined;
    const dispatch = (pick: (f: HttpFront) => Handler) => (req: IncomingMessage, res: ServerResponse) => {
      const { work } = front!;
      // Counted from here until the response is over (or has become a subscription stream).
      if (!work.admit(res)) return stopping(req, res);
      res.once('close', () => work.finish(res));
      Promise.resolve(pick(front!)(req, res)).catch((err) => {
        const correlationId = randomUUID();
        logger.error({ err, url: req.url, correlationId }, 'request failed');
        if (!res.headersSent) json(res, 500, { error: `unexpected error; correlation id ${correlationId}` });
        else res.end();
      });
    };
    const server = createServer(dispatch((f) => f.handler));
    await listen(server, config.PORT, config.HOST);
    let internal: Server | null = null;
    if (config.INTERNAL_PORT !== undefined) {
      internal = createServer(dispatch((f) => f.internalHandler));
      await listen(internal, config.INTERNAL_PORT, config.INTERNAL_HOST).catch(async (err) => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        throw err;
      });
    }
    const { port } = server.address() as AddressInfo;
    const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
    front = new HttpFront(server, `http://${host}:${port}`, internal, logger, config.SHUTDOWN_GRACE_MS);
    return front;
  }

  /** From now on the service answers: GraphQL over HTTP, SSE and WebSocket, health and metrics. */
  attach(api: ApiSetup, live: LiveSessions): void {
    const yoga = createTenantryYoga(api, [live.plugin()]);
    const separate = this.internal !== null;
    // Off (production without DASHBOARD=on): /dashboard/ is not there at all, like any unknown path.
    const dashboard = api.config.DASHBOARD ? dashboardServer(api.config.DASHBOARD_DIR ?? BUILT_DASHBOARD_DIR) : null;
    const serve = (internal: boolean): Handler => async (req, res) => {
      if (pathOf(req) === '/health/live') return json(res, 200, { status: 'ok' });
      if ((internal || !separate) && (await serveInternal(api, req, res))) return;
      if (!internal && dashboard && (await dashboard(req, res))) return;
      if (!internal) return yoga(req, res);
      json(res, 404, { error: 'not found: this address serves /metrics, /health/ready and /health/live' });
    };
    this.handler = serve(false);
    this.internalHandler = serve(true);
    live.start();
    this.live = live;
    this.websockets = serveWebSockets(this.server, yoga, api, live, this.work);
    this.phase = 'serving';
  }

  /** An SSE response turned into a subscription stream: it no longer counts as a request under way. */
  streamStarted(res: ServerResponse): void {
    this.work.finish(res);
  }

  /** Live sessions, their keys and open graphql-ws sockets (for tests and diagnostics). */
  liveCounts(): { sessions: number; keys: number; sockets: number } {
    return { ...(this.live?.counts() ?? { sessions: 0, keys: 0 }), sockets: this.websockets?.sockets ?? 0 };
  }

  /**
   * Stops in the order that loses no work: new requests (kept-alive connections too) and
   * WebSocket upgrades are answered 503 with Retry-After at once; the requests and
   * graphql-ws operations under way finish (for up to SHUTDOWN_GRACE_MS); then the
   * subscriptions are closed without completing (sockets with 1001, SSE responses ended
   * without `complete`), so their clients subscribe again; then the ports close once the
   * last responses have ended (cut after DRAIN_MS). What the service uses closes after this.
   */
  async close(): Promise<void> {
    const finished = await this.work.close(this.shutdownGraceMs);
    if (!finished) this.logger.warn({ unfinished: this.work.size, graceMs: this.shutdownGraceMs }, 'stopping with requests still under way (SHUTDOWN_GRACE_MS passed)');
    this.live?.leaveAll();
    await this.websockets?.close();
    await this.live?.stop();
    for (const s of [this.server, this.internal]) {
      if (!s) continue;
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      // Connections turn idle as their responses end: close them as they do.
      const idle = setInterval(() => s.closeIdleConnections(), 50);
      const cut = setTimeout(() => s.closeAllConnections(), DRAIN_MS);
      await closed;
      clearInterval(idle);
      clearTimeout(cut);
    }
  }
}

/** /metrics and /health/ready: true when the request was one of them (and was answered). */
async function serveInternal(api: ApiSetup, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const path = pathOf(req);
  if (path !== '/metrics' && path !== '/health/ready') return false;
  if (api.config.INTERNAL_ENDPOINTS_AUTH === 'admin' && !(await adminOnly(api, req, res))) return true;
  if (path === '/metrics') {
    const { registry } = api.services.get(TenantryMetrics);
    res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
  } else {
    // Computed in the background (src/modules/health/readiness.ts): a probe costs nothing.
    const report = api.services.get(ReadinessMonitor).current();
    json(res, report.ready ? 200 : 503, report);
  }
  return true;
}

/** Lets the request through with an ADMIN key; otherwise answers 401, 403, 429 or (control database unreachable) 503 and returns false. */
async function adminOnly(api: ApiSetup, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const correlationId = randomUUID();
  try {
    const { viewer, authFailure } = await api.services.get(ApiKeyAuthenticator).authenticate({
      authorization: headerOf(req, 'authorization'),
      sourceAddress: clientAddressOf(api.config.TRUST_PROXY, req.socket.remoteAddress, headerOf(req, 'x-forwarded-for')),
      transport: 'internal-http',
      correlationId,
    });
    if (viewer?.role === 'ADMIN') return true;
    if (viewer) json(res, 403, { error: 'an ADMIN key is required (INTERNAL_ENDPOINTS_AUTH=admin)', code: 'FORBIDDEN' });
    else json(res, 401, { error: `an ADMIN key is required (INTERNAL_ENDPOINTS_AUTH=admin): ${authFailure}`, code: 'UNAUTHENTICATED' }, { 'www-authenticate': 'Bearer' });
  } catch (err) {
    const unavailable = err instanceof RateLimitedError ? null : serviceUnavailableError(api, err, correlationId);
    if (unavailable) json(res, 503, { error: unavailable.message, code: 'SERVICE_UNAVAILABLE' }, { 'retry-after': String(RETRY_AFTER_SECONDS) });
    else if (!(err instanceof RateLimitedError)) throw err;
    else json(res, 429, { error: err.message, code: 'RATE_LIMITED' }, { 'retry-after': String(err.retryAfterSeconds) });
  }
  return false;
}
