// Watches one tenant's connection usage over graphql-ws:
//   TENANTRY_KEY=tnry_… npx tsx scripts/watch-usage.ts acme-dev
// TENANTRY_URL defaults to http://127.0.0.1:4000.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const slug = process.argv[2];
const key = process.env.TENANTRY_KEY;
if (!slug || !key) {
  console.error('usage: TENANTRY_KEY=tnry_… npx tsx scripts/watch-usage.ts <tenant-slug>');
  process.exit(2);
}
const url = `${(process.env.TENANTRY_URL ?? 'http://127.0.0.1:4000').replace(/^http/, 'ws')}/graphql`;
const client = createClient({ url, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${key}` } });

client.subscribe(
  { query: 'subscription($slug: String) { connectionUsage(tenantSlug: $slug) { current max usagePercent peak24h sampledAt } }', variables: { slug } },
  {
    next: ({ data, errors }) => {
      if (errors) return console.error(errors.map((e) => e.message).join('; '));
      const u = (data as { connectionUsage: { current: number; max: number; usagePercent: number; peak24h: number; sampledAt: string } }).connectionUsage;
      console.log(`${u.sampledAt}  ${slug}: ${u.current}/${u.max} (${u.usagePercent}%), 24h peak ${u.peak24h}`);
    },
    error: (err) => {
      console.error('subscription ended:', err instanceof Error ? err.message : err);
      process.exit(1);
    },
    complete: () => process.exit(0),
  },
);
process.on('SIGINT', () => {
  void Promise.resolve(client.dispose()).then(() => process.exit(0));
});
