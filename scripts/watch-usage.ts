// Watches one tenant's connection usage over graphql-ws, a line per value:
//   TENANTRY_URL=http://127.0.0.1:4000 TENANTRY_KEY=tnry_… npx tsx scripts/watch-usage.ts acme-dev
// TENANTRY_URL defaults to http://127.0.0.1:4000. A refused key, an unreachable server or
// an error from the API is one line on stderr and exit code 1. Once connected, a lost
// connection (a restarting server) is retried a few times before giving up.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const slug = process.argv[2];
const key = process.env.TENANTRY_KEY;
if (!slug || !key) {
  console.error('usage: TENANTRY_URL=http://127.0.0.1:4000 TENANTRY_KEY=tnry_… npx tsx scripts/watch-usage.ts <tenant-slug>');
  process.exit(2);
}
const base = process.env.TENANTRY_URL ?? 'http://127.0.0.1:4000';
const url = `${base.replace(/\/+$/, '').replace(/^http/, 'ws')}/graphql`;

/** One line for whatever ended the subscription: a close code, a socket error, GraphQL errors. */
function explain(err: unknown): string {
  if (Array.isArray(err)) return `Tenantry answered: ${err.map((e: { message?: string }) => e.message ?? String(e)).join('; ')}`;
  const e = err as { code?: number | string; reason?: string; message?: string; error?: { message?: string } };
  if (e.code === 4403) return `Tenantry at ${base} refused the key in TENANTRY_KEY (unknown, revoked or expired)`;
  if (typeof e.code === 'number') return `the connection to ${url} closed (${e.code}${e.reason ? `: ${e.reason}` : ''})`;
  const message = e.error?.message ?? e.message ?? String(err);
  return `cannot reach Tenantry at ${url}: ${message || 'connection failed'} (is it running? TENANTRY_URL names where)`;
}

function fail(err: unknown): never {
  console.error(`watch-usage: ${explain(err)}`);
  process.exit(1);
}

let connected = false;
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${key}` },
  // Never retry a first attempt (a wrong URL or key would only be reported after the
  // backoff, ~40 s); after a successful connection, retry what is not a refused key.
  retryAttempts: 5,
  shouldRetry: (event) => connected && (event as { code?: number }).code !== 4403,
  on: {
    connected: () => (connected = true),
    // ws reports a refused connection as an error event, then closes with 1006: keep the cause.
    error: (err) => {
      if (!connected) fail(err);
    },
  },
});

client.subscribe(
  { query: 'subscription($slug: String) { connectionUsage(tenantSlug: $slug) { current max usagePercent peak24h sampledAt } }', variables: { slug } },
  {
    next: ({ data, errors }) => {
      if (errors?.length) fail(errors);
      const u = (data as { connectionUsage: { current: number; max: number; usagePercent: number; peak24h: number; sampledAt: string } }).connectionUsage;
      console.log(`${u.sampledAt}  ${slug}: ${u.current}/${u.max} (${u.usagePercent}%), 24h peak ${u.peak24h}`);
    },
    error: fail,
    complete: () => process.exit(0),
  },
);
process.on('SIGINT', () => {
  void Promise.resolve(client.dispose()).then(() => process.exit(0));
});
