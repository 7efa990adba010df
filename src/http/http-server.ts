import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';
import type { Deps } from '../domain/deps.js';
import type { Logger } from '../logger.js';
import { createTenantryYoga } from '../graphql/yoga.js';
import { serveWebSockets } from './websocket.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** The routes of a started service: GraphQL (HTTP, SSE) on /graphql, health on /health/*, Prometheus on /metrics. */
function serviceRoutes(deps: Deps, yoga: ReturnType<typeof createTenantryYoga>): Handler {
  return async (req, res) => {
    if (req.url === '/health/live') return json(res, 200, { status: 'ok' });
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType }).end(await deps.metrics.registry.metrics());
      return;
    }
    if (req.url === '/health/ready') {
      // Computed in the background (readiness-monitor.ts): a probe costs nothing.
      const report = deps.readiness.current();
      return json(res, report.ready ? 200 : 503, report);
    }
    return yoga(req, res);
  };
}

/**
 * The HTTP port, bound first thing at start: a busy port fails the start before anything
 * else (PostgreSQL, the pooler, the admin key) is touched. Until the service is attached,
 * /health/live answers 200 and everything else 503 with the start-up phase.
 */
export class HttpFront {
  private handler: Handler;
  private websockets: { close(): Promise<void> } | null = null;
  phase = 'starting';

  private constructor(
    readonly server: Server,
    readonly url: string,
  ) {
    this.handler = (req, res) => {
      if (req.url === '/health/live') return json(res, 200, { status: 'ok', phase: this.phase });
      if (req.url === '/health/ready') return json(res, 503, { ready: false, starting: true, phase: this.phase });
      json(res, 503, { errors: [{ message: `Tenantry is starting (${this.phase}); try again in a moment`, extensions: { code: 'STARTING' } }] });
    };
  }

  static async listen(config: Pick<Config, 'PORT' | 'HOST'>, logger: Logger): Promise<HttpFront> {
    let front: HttpFront | undefined;
    const server = createServer((req, res) => {
      Promise.resolve(front!.handler(req, res)).catch((err) => {
        logger.error({ err, url: req.url }, 'request failed');
        if (!res.headersSent) json(res, 500, { errors: [{ message: 'Unexpected error' }] });
        else res.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new Error(`port ${config.PORT} on ${config.HOST} is in use: another Tenantry (or another program) is listening there; set PORT to a free port`, { cause: err }) : err),
      );
      server.listen(config.PORT, config.HOST, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
    front = new HttpFront(server, `http://${host}:${port}`);
    return front;
  }

  /** From now on the service answers: GraphQL over HTTP, SSE and WebSocket, health and metrics. */
  attach(deps: Deps): void {
    const yoga = createTenantryYoga(deps);
    this.handler = serviceRoutes(deps, yoga);
    this.websockets = serveWebSockets(this.server, yoga, deps);
    this.phase = 'serving';
  }

  async close(): Promise<void> {
    await this.websockets?.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
