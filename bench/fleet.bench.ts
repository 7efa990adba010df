// `npm run bench`: fleets of 100, 1,000 and 10,000 tenants on one cluster, and what each path
// of Tenantry costs at each size, with the ratio to the smallest fleet measured in the same run.
//
// The fleet is built through Tenantry's own API (provisionTenant, 4 at a time) on a private
// PostgreSQL 18 started for the run with fsync off (bench/support/private-cluster.ts), with
// a real PgBouncer. At each size the server is restarted (start-up times), then measured:
// provisionTenant and updateTenantQuota at concurrency 1 and 4, the bare SQL floor of a
// provision, a page of tenants, the usage sampler, event delivery to 100 per-tenant and 10
// all-tenant subscribers, `{ __typename }` against a bare yoga server, and the server's RSS.
//
// Environment: BENCH_SIZES (default 100,1000,10000), BENCH_DATABASE_URL (a superuser URL of
// a server to use instead of a private one; everything made is dropped at the end),
// BENCH_SMOKE=1 (few samples and short windows: the smoke run in `npm test`), BENCH_OUTPUT (a
// file to write the Markdown table to), BENCH_TAG (8 hex digits naming what the run creates:
// control database tenantry_b<tag>, tenants b<tag>_*), BENCH_POOLER_SHARDS (POOLER_SHARDS of
// the Tenantry under test, default 1).
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { createClient } from 'graphql-ws';
import pg from 'pg';
import format from 'pg-format';
import WebSocket from 'ws';
import { createLogger } from '../src/platform/logger.js';
import { freePort, freePorts } from '../test/support/free-port.js';
import { dropEverythingOf } from '../test/support/test-tenantry.js';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { startPrivateCluster, type BenchCluster } from './support/private-cluster.js';
import { poolerFloor } from './support/pooler-floor.js';
import { bareTenants } from './support/usable-tenant-floor.js';
import { p50, p95 } from './support/statistics.js';
import { TenantryProcess, type StartTimes } from './support/tenantry-process.js';

const smoke = process.env.BENCH_SMOKE === '1';
const sizes = (process.env.BENCH_SIZES ?? '100,1000,10000').split(',').map(Number);
const N = smoke
  ? { provision1: 2, provision4: 4, quota1: 3, quota4: 4, page: 3, typename: 20, windowMs: 4_000, perTenantSubscribers: 3, allTenantSubscribers: 2 }
  : { provision1: 20, provision4: 40, quota1: 40, quota4: 80, page: 20, typename: 300, windowMs: 20_000, perTenantSubscribers: 100, allTenantSubscribers: 10 };
const logger = createLogger('warn');
/** The pause before each measured provision and floor (docs/benchmarks.md). */
const QUIET_MS = smoke ? 20 : 250;
const log = (message: string) => process.stdout.write(`# ${new Date().toISOString().slice(11, 19)} ${message}\n`);

// ---- timing --------------------------------------------------------------------------------
/** Runs `count` calls of `call(i)` with `concurrency` at once; returns each call's latency and the wall time. */
async function timed(count: number, concurrency: number, call: (i: number) => Promise<void>): Promise<{ latencies: number[]; wallMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const t0 = performance.now();
        await call(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { latencies, wallMs: performance.now() - started };
}

// ---- the cluster and the server ------------------------------------------------------------
let cluster: BenchCluster;
let superuserUrl: string;
const tag = process.env.BENCH_TAG ?? randomBytes(4).toString('hex');
const names = { controlDatabase: `tenantry_b${tag}`, prefix: `b${tag}_` };
if (process.env.BENCH_DATABASE_URL) {
  superuserUrl = process.env.BENCH_DATABASE_URL;
  cluster = { url: superuserUrl, description: 'the server at BENCH_DATABASE_URL, as configured', copyStrategy: 'wal_log', stop: async () => {} };
} else {
  cluster = await startPrivateCluster(logger);
  superuserUrl = cluster.url;
}
const admin = new pg.Pool({ connectionString: superuserUrl, max: 4 });
const home = await mkdtemp(path.join(tmpdir(), 'tenantry-bench-home-'));
const env: Record<string, string> = {
  DATABASE_URL: superuserUrl,
  CONTROL_DATABASE: names.controlDatabase,
  TENANT_DB_PREFIX: names.prefix,
  PORT: String(await freePort()),
  POOLER_PORT: String(await freePorts(Number(process.env.BENCH_POOLER_SHARDS ?? 1))),
  POOLER_SHARDS: process.env.BENCH_POOLER_SHARDS ?? '1',
  TENANTRY_HOME: home,
  ADMIN_API_KEY: randomBytes(24).toString('base64url'),
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  // Small quotas so that 10,000 tenants fit one cluster's accounting; the capacity check is
  // told to allow it (max_connections is 500: the quotas are overcommitted on purpose).
  QUOTA_MIN: '1',
  DEFAULT_MAX_CONNECTIONS: '2',
  OVERCOMMIT_FACTOR: '1000',
  POOLER_MAX_CLIENT_CONN: '2000',
  DATABASE_COPY_STRATEGY: cluster.copyStrategy,
  // Readiness is recomputed every second (default 10 s) so the start-up figures are sharper.
  READINESS_INTERVAL_MS: '1000',
};
let server: TenantryProcess | undefined;

async function restart(): Promise<StartTimes> {
  await server?.stop();
  const started = await TenantryProcess.start(env);
  server = started.server;
  return started.times;
}

function must<T>(r: { data?: T; errors?: { message: string }[] }, what: string): T {
  if (r.errors?.length || !r.data) throw new Error(`${what}: ${JSON.stringify(r.errors)}`);
  const payload = Object.values(r.data as object)[0] as { userErrors?: { message: string }[] } | undefined;
  if (payload?.userErrors?.length) throw new Error(`${what}: ${JSON.stringify(payload.userErrors)}`);
  return r.data;
}

const PROVISION = `mutation($input: ProvisionTenantInput!) { provisionTenant(input: $input) { tenant { slug } connectionString userErrors { code message } } }`;
let fleet = 0;
const connectionStrings: string[] = [];
async function provision(slug: string): Promise<void> {
  const data = must(await server!.gql(PROVISION, { input: { slug, displayName: slug } }), `provisionTenant ${slug}`) as any;
  fleet++;
  if (connectionStrings.length < N.perTenantSubscribers) connectionStrings.push(data.provisionTenant.connectionString);
}
const slugs: string[] = [];

async function growTo(size: number): Promise<number> {
  const started = performance.now();
  const missing = size - fleet;
  let done = 0;
  // BENCH_BUILD_CONCURRENCY: provisions at once while building (pool applies are shared).
  await timed(missing, Number(process.env.BENCH_BUILD_CONCURRENCY ?? 4), async () => {
    const slug = `f${String(slugs.length + 1).padStart(5, '0')}`;
    slugs.push(slug);
    await provision(slug);
    if (++done % 500 === 0) log(`built ${fleet} of ${size} tenants`);
  });
  return performance.now() - started;
}

// ---- one size ------------------------------------------------------------------------------
interface Figures {
  size: number;
  buildMs: number;
  start: StartTimes;
  provision1: number[];
  provision4: number[];
  provisionThroughput: number;
  quota1: number[];
  quota4: number[];
  quotaThroughput: number;
  floor: number[];
  usableFloor: number[];
  quotaFloor: number[];
  recordFloor: number[];
  poolerFloor: number[];
  poolerFloorFresh: number[];
  pageStatements: number;
  pageLatency: number[];
  pageRowsLatency: number[];
  pageNoUsageLatency: number[];
  metricsLatency: number[];
  sampleMs: number;
  walPerSample: number;
  samples: number;
  perTenantDelay: number[];
  allTenantDelay: number[];
  typename: number[];
  bareTypename: number[];
  rssBytes: number;
}

/**
 * provisionTenant one at a time, each followed by the bare SQL floor (CREATE ROLE + CREATE
 * DATABASE ... TEMPLATE from Tenantry's own template database) and a usable tenant in bare SQL
 * (bench/support/usable-tenant-floor.ts): each round sees the same moment of a noisy machine
 * (a checkpoint once made one floor 3x the next). Then provisionTenant four at a time.
 */
async function measureProvision(size: number) {
  const template = (
    await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datistemplate AND starts_with(datname, $1) ORDER BY oid DESC LIMIT 1`, [names.controlDatabase])
  ).rows[0]!.datname;
  const bare = bareTenants(admin, superuserUrl, template, cluster.copyStrategy === 'file_copy' ? 'FILE_COPY' : undefined);
  const provision1: number[] = [];
  const floor: number[] = [];
  const usableFloor: number[] = [];
  try {
    for (let i = 0; i < N.provision1; i++) {
      // Each starts on a settled machine: what a provision leaves running in the background (its
      // inventory, WAL being written out) is not charged to the floor after it.
      await sleep(QUIET_MS);
      const started = performance.now();
      await provision(`p${size}-a${i}`);
      provision1.push(performance.now() - started);
      await sleep(QUIET_MS);
      floor.push(await bare.bare(`${names.prefix}floor_${size}_${i}`));
      await sleep(QUIET_MS);
      usableFloor.push(await bare.usable(`${names.prefix}usable_${size}_${i}`));
    }
  } finally {
    await bare.drop();
  }
  const oneWallMs = provision1.reduce((a, b) => a + b, 0);
  const four = await timed(N.provision4, 4, (i) => provision(`p${size}-b${i}`));
  return { provision1, floor, usableFloor, provision4: four.latencies, provisionThroughput: N.provision4 / four.wallMs / (N.provision1 / oneWallMs) };
}

async function measureQuota() {
  const QUOTA = `mutation($slug: String!, $n: Int!) { updateTenantQuota(input: { slug: $slug, maxConnections: $n, reason: "bench" }) { userErrors { code message } } }`;
  const pick = (i: number) => slugs[(i * 7919) % slugs.length]!;
  let round = 0;
  const change = async (i: number) => void must(await server!.gql(QUOTA, { slug: pick(i + round), n: 2 + ((i + round) % 2) }), 'updateTenantQuota');
  const one = await timed(N.quota1, 1, change);
  round = N.quota1;
  const four = await timed(N.quota4, 4, change);
  return { quota1: one.latencies, quota4: four.latencies, quotaThroughput: N.quota4 / four.wallMs / (N.quota1 / one.wallMs) };
}

/**
 * The durable record a quota change needs (the issue asks for history and audit): one
 * transaction of three small rows in the control database, sent as one statement, in bare SQL.
 */
async function measureRecordFloor(): Promise<number[]> {
  const control = new pg.Client({ connectionString: withDatabase(superuserUrl, names.controlDatabase) });
  await control.connect();
  const table = `${names.prefix}record_floor`;
  await control.query(format('CREATE TABLE %I (id bigserial PRIMARY KEY, kind text NOT NULL, body jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now())', table));
  try {
    const { latencies } = await timed(N.quota1, 1, async (i) => {
      const body = JSON.stringify({ tenant: i, maxConnections: 2 + (i % 2) });
      await control.query(format(`BEGIN; INSERT INTO %1$I (kind, body) VALUES ('quota', %2$L), ('history', %2$L), ('audit', %2$L); COMMIT`, table, body));
    });
    return latencies;
  } finally {
    await control.query(format('DROP TABLE %I', table));
    await control.end();
  }
}

/** ALTER ROLE ... CONNECTION LIMIT on tenant roles, nothing else: the floor of a quota change. */
async function measureQuotaFloor(): Promise<number[]> {
  const roles = (
    await admin.query<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) AND rolcanlogin AND strpos(rolname, '.') = 0 ORDER BY rolname LIMIT $2`, [names.prefix, N.quota1])
  ).rows.map((r) => r.rolname);
  const { latencies } = await timed(N.quota1, 1, async (i) => {
    await admin.query(format('ALTER ROLE %I CONNECTION LIMIT %s', roles[i % roles.length]!, 2 + (i % 2)));
  });
  return latencies;
}

/**
 * The page with and without the usage field, and with its rows only, taken in turn (so that
 * background work weighs on each alike), each timing the request alone. Its control statements
 * are counted on rounds of their own: reading the counter is a /metrics scrape, whose per-tenant
 * series grow with the fleet (an earlier version of this bench timed two scrapes with each
 * page and put their growth on the usage field).
 */
async function measurePage(): Promise<{ pageStatements: number; pageLatency: number[]; pageRowsLatency: number[]; pageNoUsageLatency: number[]; metricsLatency: number[] }> {
  const variants = { usage: PAGE, noUsage: PAGE_NO_USAGE, rows: PAGE_ROWS };
  const latencies: Record<keyof typeof variants, number[]> = { usage: [], noUsage: [], rows: [] };
  for (let i = 0; i < N.page; i++) {
    for (const [name, query] of Object.entries(variants) as [keyof typeof variants, string][]) {
      const t0 = performance.now();
      must(await server!.gql(query), `tenants(first: 50): ${name}`);
      latencies[name].push(performance.now() - t0);
    }
  }
  // A scrape's size grows with the fleet by design (three gauges per tenant): its cost, shown apart.
  const { latencies: metricsLatency } = await timed(N.page, 1, async () => void (await (await server!.internal('/metrics')).text()));
  // The counter is the server's: background work can add to one request's count, never take away.
  const statements: number[] = [];
  for (let i = 0; i < 3; i++) {
    const before = await server!.metric('tenantry_control_statements_total');
    must(await server!.gql(PAGE), 'tenants(first: 50)');
    statements.push((await server!.metric('tenantry_control_statements_total')) - before);
  }
  return { pageStatements: Math.min(...statements), pageLatency: latencies.usage, pageRowsLatency: latencies.rows, pageNoUsageLatency: latencies.noUsage, metricsLatency };
}
const PAGE = `{ tenants(first: 50) { edges { node { slug status quota { maxConnections } usage { current max } schemaVersion { version } pool { status } } } } }`;
const PAGE_ROWS = `{ tenants(first: 50) { edges { node { slug status } } } }`;
const PAGE_NO_USAGE = `{ tenants(first: 50) { edges { node { slug status quota { maxConnections } schemaVersion { version } pool { status } } } } }`;

/**
 * Subscribers (per tenant on the first tenants, and for the whole fleet) for a window in which
 * sessions come and go on some of those tenants. Delay = arrival - the sample's sampledAt (one
 * clock: same machine). The sampler's cost and WAL are read over the same window.
 */
async function measureStreams() {
  const perTenantDelay: number[] = [];
  const allTenantDelay: number[] = [];
  const clients: ReturnType<typeof createClient>[] = [];
  const subscribe = (query: string, variables: Record<string, unknown>, into: number[], at: (data: any) => string[]) => {
    const client = createClient({
      url: `${server!.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${env.ADMIN_API_KEY}` },
      retryAttempts: 0,
    });
    clients.push(client);
    let first = true;
    client.subscribe({ query, variables }, {
      next: (r) => {
        const now = Date.now();
        if (first) return void (first = false); // the opening snapshot is not a delivery
        for (const t of at(r.data)) into.push(now - Date.parse(t));
      },
      error: (err) => logger.warn({ err: String(err) }, 'subscription ended'),
      complete: () => undefined,
    });
  };
  for (const slug of slugs.slice(0, N.perTenantSubscribers)) {
    subscribe(`subscription($s: String) { connectionUsage(tenantSlug: $s) { current sampledAt } }`, { s: slug }, perTenantDelay, (d) => [d.connectionUsage.sampledAt]);
  }
  for (let i = 0; i < N.allTenantSubscribers; i++) {
    subscribe(`subscription { connectionUsageBatch { sampledAt usage { tenantSlug current } } }`, {}, allTenantDelay, (d) => [d.connectionUsageBatch.sampledAt]);
  }
  await new Promise((r) => setTimeout(r, 3_000)); // every subscriber in, sampling at the watched pace

  const metric = (name: string) => server!.metric(name);
  const wal = async () => (await admin.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
  const before = { sum: await metric('tenantry_usage_sample_duration_seconds_sum'), count: await metric('tenantry_usage_sample_duration_seconds_count'), lsn: await wal() };
  perTenantDelay.length = 0;
  allTenantDelay.length = 0;
  // Sessions come and go on a fifth of the watched tenants: each holds one for half a second.
  const churnTargets = connectionStrings.slice(0, Math.max(1, Math.floor(connectionStrings.length / 5)));
  const deadline = Date.now() + N.windowMs;
  let k = 0;
  const sessions: Promise<void>[] = [];
  while (Date.now() < deadline) {
    const url = churnTargets[k++ % churnTargets.length]!;
    sessions.push(
      (async () => {
        const c = new pg.Client({ connectionString: url });
        c.on('error', () => undefined);
        await c.connect();
        await new Promise((r) => setTimeout(r, 500));
        await c.end();
      })().catch(() => undefined),
    );
    await new Promise((r) => setTimeout(r, 250));
  }
  await Promise.all(sessions);
  const after = { sum: await metric('tenantry_usage_sample_duration_seconds_sum'), count: await metric('tenantry_usage_sample_duration_seconds_count'), lsn: await wal() };
  const walBytes = Number((await admin.query<{ d: string }>('SELECT pg_wal_lsn_diff($1, $2)::text AS d', [after.lsn, before.lsn])).rows[0]!.d);
  const samples = after.count - before.count;
  for (const c of clients) await c.dispose();
  return { samples, sampleMs: samples > 0 ? ((after.sum - before.sum) * 1000) / samples : NaN, walPerSample: samples > 0 ? walBytes / samples : NaN, perTenantDelay, allTenantDelay };
}

async function measureTypename(): Promise<{ typename: number[]; bareTypename: number[] }> {
  const bare = spawn(process.execPath, ['--import', 'tsx', 'bench/support/bare-yoga.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const bareUrl = await new Promise<string>((resolve) => createInterface({ input: bare.stdout! }).once('line', resolve));
  const ask = async (url: string, headers: Record<string, string>) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"query":"{ __typename }"}' });
    if (!res.ok) throw new Error(`{ __typename } at ${url}: ${res.status}`);
    await res.text();
  };
  const tenantryHeaders = { authorization: `Bearer ${env.ADMIN_API_KEY}`, 'x-graphql-yoga-csrf': '1' };
  // Interleaved rounds, so that noise on the machine falls on both alike.
  const typename: number[] = [];
  const bareTypename: number[] = [];
  for (let round = 0; round < 4; round++) {
    typename.push(...(await timed(N.typename / 4, 1, () => ask(`${server!.url}/graphql`, tenantryHeaders))).latencies);
    bareTypename.push(...(await timed(N.typename / 4, 1, () => ask(bareUrl, {}))).latencies);
  }
  bare.kill('SIGTERM');
  return { typename, bareTypename };
}

async function measure(size: number): Promise<Figures> {
  if (!server) await restart();
  log(`growing the fleet to ${size}`);
  const buildMs = await growTo(size);
  log(`restarting Tenantry with ${fleet} tenants`);
  const start = await restart();
  log('provisionTenant, each with the bare SQL floor and a usable tenant in bare SQL');
  const p = await measureProvision(size);
  log('updateTenantQuota');
  const q = await measureQuota();
  log('bare SQL floor of a quota change, its record, and the pooler\'s minimum (write + RELOAD at this size)');
  const quotaFloor = await measureQuotaFloor();
  const recordFloor = await measureRecordFloor();
  // The minimum of one PgBouncer's share of the pools (POOLER_SHARDS).
  const poolerMin = await poolerFloor(Math.ceil(fleet / Number(env.POOLER_SHARDS)), smoke ? 2 : 7);
  log('tenants(first: 50)');
  const page = await measurePage();
  log('subscribers, sampler and WAL');
  const streams = await measureStreams();
  log('{ __typename }');
  const tn = await measureTypename();
  return { size, buildMs, start, ...p, ...q, quotaFloor, recordFloor, poolerFloor: poolerMin.minimum, poolerFloorFresh: poolerMin.fresh, ...page, ...streams, ...tn, rssBytes: await server!.rssBytes() };
}

// ---- the report ----------------------------------------------------------------------------
function report(all: Figures[]): string {
  const base = all[0]!;
  const ms = (v: number) => (Number.isNaN(v) ? 'n/a' : v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`);
  const rows: [string, (f: Figures) => number, (v: number) => string][] = [
    ['building the fleet to this size (API, 4 at a time)', (f) => f.buildMs, (v) => `${(v / 1000).toFixed(1)} s`],
    ['start: /health/live', (f) => f.start.liveMs, ms],
    ['start: /health/ready', (f) => f.start.readyMs, ms],
    ['start: inventory pass done (background)', (f) => f.start.inventoryMs, ms],
    ['provisionTenant p50, concurrency 1', (f) => p50(f.provision1), ms],
    ['provisionTenant p95, concurrency 1', (f) => p95(f.provision1), ms],
    ['provisionTenant p50, concurrency 4', (f) => p50(f.provision4), ms],
    ['provisionTenant p95, concurrency 4', (f) => p95(f.provision4), ms],
    ['provisionTenant throughput, concurrency 4 / 1', (f) => f.provisionThroughput, (v) => `${v.toFixed(2)}x`],
    ['bare SQL floor (CREATE ROLE + CREATE DATABASE ... TEMPLATE) p50', (f) => p50(f.floor), ms],
    ['provisionTenant p50 / bare SQL floor p50', (f) => p50(f.provision1) / p50(f.floor), (v) => `${v.toFixed(2)}x`],
    ['updateTenantQuota p50, concurrency 1', (f) => p50(f.quota1), ms],
    ['updateTenantQuota p95, concurrency 1', (f) => p95(f.quota1), ms],
    ['updateTenantQuota p50, concurrency 4', (f) => p50(f.quota4), ms],
    ['updateTenantQuota p95, concurrency 4', (f) => p95(f.quota4), ms],
    ['updateTenantQuota throughput, concurrency 4 / 1', (f) => f.quotaThroughput, (v) => `${v.toFixed(2)}x`],
    ['bare ALTER ROLE ... CONNECTION LIMIT p50', (f) => p50(f.quotaFloor), ms],
    ['pooler minimum: write pgbouncer.ini (as Tenantry does, not synced) + RELOAD on a held admin connection, one PgBouncer\'s share at this size, p50 (a bare PgBouncer)', (f) => p50(f.poolerFloor), ms],
    ['pooler floor as earlier stops measured it: ini synced + RELOAD on a new admin connection, p50', (f) => p50(f.poolerFloorFresh), ms],
    ['updateTenantQuota p50 / (2 x ALTER ROLE p50 + pooler minimum) (the stricter reading: target <= 1)', (f) => p50(f.quota1) / (2 * p50(f.quotaFloor) + p50(f.poolerFloor)), (v) => `${v.toFixed(2)}x`],
    ['updateTenantQuota p95 / (2 x ALTER ROLE p95 + pooler minimum p95)', (f) => p95(f.quota1) / (2 * p95(f.quotaFloor) + p95(f.poolerFloor)), (v) => `${v.toFixed(2)}x`],
    ['provisionTenant p95 / bare SQL floor p95', (f) => p95(f.provision1) / p95(f.floor), (v) => `${v.toFixed(2)}x`],
    ['provisionTenant p50 / (bare SQL floor p50 + pooler minimum)', (f) => p50(f.provision1) / (p50(f.floor) + p50(f.poolerFloor)), (v) => `${v.toFixed(2)}x`],
    ['a usable tenant in bare SQL (role with password, database, grants, one session in it) p50', (f) => p50(f.usableFloor), ms],
    ['lower bound of provisionTenant / bare SQL floor: (usable tenant + pooler minimum) / bare SQL floor, p50', (f) => (p50(f.usableFloor) + p50(f.poolerFloor)) / p50(f.floor), (v) => `${v.toFixed(2)}x`],
    ['provisionTenant p50 / (usable tenant + pooler minimum): Tenantry\'s own share', (f) => p50(f.provision1) / (p50(f.usableFloor) + p50(f.poolerFloor)), (v) => `${v.toFixed(2)}x`],
    ['a quota change\'s record in bare SQL (quota, history, audit: one transaction) p50', (f) => p50(f.recordFloor), ms],
    ['updateTenantQuota p50 / (ALTER ROLE + pooler minimum) (target <= 2)', (f) => p50(f.quota1) / (p50(f.quotaFloor) + p50(f.poolerFloor)), (v) => `${v.toFixed(2)}x`],
    ['updateTenantQuota p50 / (ALTER ROLE + pooler floor as earlier stops measured it)', (f) => p50(f.quota1) / (p50(f.quotaFloor) + p50(f.poolerFloorFresh)), (v) => `${v.toFixed(2)}x`],
    ['updateTenantQuota p50 / (2 x ALTER ROLE + record + pooler minimum): Tenantry\'s own share', (f) => p50(f.quota1) / (2 * p50(f.quotaFloor) + p50(f.recordFloor) + p50(f.poolerFloor)), (v) => `${v.toFixed(2)}x`],
    ['provisionTenant throughput, concurrency 1 (per s)', (f) => 1000 / (f.provision1.reduce((a, b) => a + b, 0) / f.provision1.length), (v) => v.toFixed(1)],
    ['updateTenantQuota throughput, concurrency 1 (per s)', (f) => 1000 / (f.quota1.reduce((a, b) => a + b, 0) / f.quota1.length), (v) => v.toFixed(1)],
    ['tenants(first: 50): control-database statements', (f) => f.pageStatements, (v) => String(v)],
    ['tenants(first: 50): p50', (f) => p50(f.pageLatency), ms],
    ['tenants(first: 50) without usage (quota, schemaVersion, pool): p50', (f) => p50(f.pageNoUsageLatency), ms],
    ['tenants(first: 50), slug and status only: p50', (f) => p50(f.pageRowsLatency), ms],
    ['GET /metrics (per-tenant series): p50', (f) => p50(f.metricsLatency), ms],
    ['usage sampler: time per sample (mean)', (f) => f.sampleMs, ms],
    ['usage sampler: WAL bytes per sample', (f) => f.walPerSample, (v) => (Number.isNaN(v) ? 'n/a' : `${Math.round(v)} B`)],
    [`event delay p50, ${N.perTenantSubscribers} per-tenant subscribers`, (f) => p50(f.perTenantDelay), ms],
    [`event delay p95, ${N.perTenantSubscribers} per-tenant subscribers`, (f) => p95(f.perTenantDelay), ms],
    [`event delay p50, ${N.allTenantSubscribers} all-tenant subscribers`, (f) => p50(f.allTenantDelay), ms],
    [`event delay p95, ${N.allTenantSubscribers} all-tenant subscribers`, (f) => p95(f.allTenantDelay), ms],
    ['{ __typename } p50, Tenantry (with key)', (f) => p50(f.typename), ms],
    ['{ __typename } p50, bare yoga', (f) => p50(f.bareTypename), ms],
    ['{ __typename } Tenantry / bare yoga', (f) => p50(f.typename) / p50(f.bareTypename), (v) => `${v.toFixed(2)}x`],
    ['server RSS after the measurements', (f) => f.rssBytes, (v) => `${(v / 2 ** 20).toFixed(0)} MB`],
  ];
  const header = `| | ${all.map((f) => `${f.size.toLocaleString('en')} tenants`).join(' | ')} |\n|---|${all.map(() => '---').join('|')}|`;
  const body = rows.map(([label, pick, show]) => {
    const cells = all.map((f) => {
      const v = pick(f);
      const ratio = f === base || Number.isNaN(v) || pick(base) === 0 || label.startsWith('building') ? '' : ` (${(v / pick(base)).toFixed(2)}x)`;
      return `${show(v)}${ratio}`;
    });
    return `| ${label} | ${cells.join(' | ')} |`;
  });
  return [header, ...body].join('\n');
}

const figures: Figures[] = [];
let failed = false;
try {
  for (const size of sizes) {
    figures.push(await measure(size));
    log(`measured ${size}`);
  }
} catch (err) {
  failed = true;
  console.error(err);
  if (server) console.error(server.output.join('').slice(-4000));
} finally {
  await server?.stop();
  if (process.env.BENCH_DATABASE_URL) await dropEverythingOf(admin, names).catch((err) => console.error('cleaning up failed:', err));
  await admin.end();
  await cluster.stop();
  await rm(home, { recursive: true, force: true });
}
if (figures.length > 0) {
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const text = `${report(figures)}\n\nCluster: ${cluster.description}.\nMachine: ${machine}. Ratios in parentheses are to the ${figures[0]!.size}-tenant column of this run. POOLER_SHARDS=${env.POOLER_SHARDS}.\n`;
  process.stdout.write(`\n${text}`);
  if (process.env.BENCH_OUTPUT) await writeFile(process.env.BENCH_OUTPUT, text);
}
process.exit(failed ? 1 : 0);
