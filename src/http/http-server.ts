import { createServer, type Server } from 'node:http';
import type { Config } from '../config.js';
import type { Deps } from '../domain/deps.js';
import { checkReadiness } from '../domain/health/readiness.js';
import { LiveSessions } from '../graphql/live-sessions.js';
import { createTenantryYoga } from '../graphql/yoga.js';
import { serveWebSockets } from './websocket.js';

/** How long closing waits for open responses (SSE streams completing) before cutting connections. */
const DRAIN_MS = 2000;

/** One port: GraphQL over HTTP, SSE and WebSocket on /graphql, health on /health/*, Prometheus on /metrics. */
export async function serve(deps: Deps, config: Config): Promise<{ server: Server; live: LiveSessions; close(): Promise<void> }> {
  const live = new LiveSessions(deps);
  const yoga = createTenantryYoga(deps, [live.plugin()]);
  const server: Server = createServer(async (req, res) => {
    if (req.url === '/health/live') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType }).end(await deps.metrics.registry.metrics());
      return;
    }
    if (req.url === '/health/ready') {
      const report = await checkReadiness(deps);
      res.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(report));
      return;
    }
    return yoga(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  live.start();
  const websockets = serveWebSockets(server, yoga, deps, live);
  return {
    server,
    live,
    /**
     * Clients first: every subscription completes (SSE streams end with their `complete`
     * event, graphql-ws operations with `complete`), sockets close with 1001 (going away),
     * then the port closes once open responses have ended (cut after DRAIN_MS).
     */
    async close() {
      live.endAll();
      // The completions go out before the close frames.
      await new Promise((resolve) => setImmediate(resolve));
      await websockets.close();
      await live.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Connections turn idle as their responses end: close them as they do.
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      const cut = setTimeout(() => server.closeAllConnections(), DRAIN_MS);
      await closed;
      clearInterval(idle);
      clearTimeout(cut);
    },
  };
}
