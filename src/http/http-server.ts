import { createServer, type Server } from 'node:http';
import type { Config } from '../config.js';
import type { Deps } from '../domain/deps.js';
import { checkReadiness } from '../domain/health/readiness.js';
import { createTenantryYoga } from '../graphql/yoga.js';
import { serveWebSockets } from './websocket.js';

/** One port: GraphQL over HTTP, SSE and WebSocket on /graphql, health on /health/*, Prometheus on /metrics. */
export async function serve(deps: Deps, config: Config): Promise<{ server: Server; websockets: { close(): Promise<void> } }> {
  const yoga = createTenantryYoga(deps);
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
  return { server, websockets: serveWebSockets(server, yoga, deps) };
}
