// `npm run bench:request`: what Tenantry's request path (key check, context, plugins) costs
// over a bare graphql-yoga server (bench/support/bare-yoga.ts), measured with autocannon on
// `{ __typename }` POSTed with an ADMIN key. Both servers run at once, each in a process of its
// own; the runs alternate (Tenantry then bare, then bare then Tenantry, ...) so that noise on the
// machine falls on both alike. Reported: requests per second at saturation (BENCH_CONNECTIONS
// connections, default 10) and their ratio, Tenantry / bare, which is what the request path
// costs; beside it the latency at saturation and at low load (one connection), and their ratios.
// A latency ratio at low load hides most of the cost (the client's share of each round trip is
// the same on both sides), which is why the throughput ratio is the one to watch.
//
// Environment: BENCH_ROUNDS (default 3), BENCH_SECONDS (per run, default 5), BENCH_CONNECTIONS
// (default 10), BENCH_DATABASE_URL (a superuser URL of a server to use instead of a private
// one; what the run creates is dropped at the end), BENCH_SMOKE=1 (one short round: the smoke
// run in `npm test`), BENCH_OUTPUT (a file to write the Markdown table to), BENCH_NODE_ARGS
// (node options for Tenantry, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import autocannon, { type Result } from 'autocannon';
import pg from 'pg';
import { createLogger } from '../src/platform/logger.js';
import { freePort } from '../test/support/free-port.js';
import { dropEverythingOf } from '../test/support/test-tenantry.js';
import { startPrivateCluster, type BenchCluster } from './support/private-cluster.js';
import { mean, p50, p99 } from './support/statistics.js';
import { processCpuSeconds, TenantryProcess } from './support/tenantry-process.js';

const smoke = process.env.BENCH_SMOKE === '1';
const rounds = Number(process.env.BENCH_ROUNDS ?? (smoke ? 1 : 3));
const seconds = Number(process.env.BENCH_SECONDS ?? (smoke ? 1 : 5));
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
const logger = createLogger('warn');
const log = (message: string) => process.stdout.write(`# ${new Date().toISOString().slice(11, 19)} ${message}\n`);

let cluster: BenchCluster;
if (process.env.BENCH_DATABASE_URL) {
  cluster = { url: process.env.BENCH_DATABASE_URL, description: 'the server at BENCH_DATABASE_URL, as configured', copyStrategy: 'wal_log', stop: async () => {} };
} else {
  cluster = await startPrivateCluster(logger);
}
const tag = process.env.BENCH_TAG ?? randomBytes(4).toString('hex');
const names = { controlDatabase: `tenantry_r${tag}`, prefix: `r${tag}_` };
const home = await mkdtemp(path.join(tmpdir(), 'tenantry-bench-home-'));
const env: Record<string, string> = {
  DATABASE_URL: cluster.url,
  CONTROL_DATABASE: names.controlDatabase,
  TENANT_DB_PREFIX: names.prefix,
  PORT: String(await freePort()),
  TENANTRY_HOME: home,
  ADMIN_API_KEY: randomBytes(24).toString('base64url'),
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  // The request path does not touch the pooler: none is started.
  POOLER: 'none',
};

const QUERY = JSON.stringify({ query: '{ __typename }' });

interface Side {
  name: 'Tenantry' | 'bare yoga';
  url: string;
  headers: Record<string, string>;
  /** CPU seconds the server's process has used so far. */
  cpu: () => Promise<number>;
  saturated: Timed[];
  /** The server's CPU milliseconds per request in each saturated run. */
  cpuPerRequest: number[];
  single: Timed[];
}

async function check(side: Side): Promise<void> {
  const res = await fetch(side.url, { method: 'POST', headers: side.headers, body: QUERY });
  const body = await res.text();
  if (res.status !== 200 || body !== '{"data":{"__typename":"Query"}}') throw new Error(`${side.name}: { __typename } answered ${res.status} ${body}`);
}

/** One autocannon run with the time of each 200 answer (ms, fractional). */
type Timed = Result & { latencies: number[] };

async function run(side: Side, conns: number, duration: number): Promise<Timed> {
  const cpuBefore = await side.cpu();
  // autocannon's own histogram counts whole milliseconds (a sub-millisecond median reads 0): each
  // answer's time is kept as measured instead.
  const latencies: number[] = [];
  const result = await new Promise<Timed>((resolve, reject) => {
    autocannon({ url: side.url, method: 'POST', headers: side.headers, body: QUERY, connections: conns, duration }, (err, r) => (err ? reject(err) : resolve({ ...r, latencies }))).on(
      'response',
      (_client, statusCode, _bytes, ms) => void (statusCode === 200 && latencies.push(ms)),
    );
  });
  if (result.errors || result.timeouts || result.non2xx) {
    throw new Error(`${side.name}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers in ${result.requests.total}`);
  }
  if (conns === connections) side.cpuPerRequest.push((((await side.cpu()) - cpuBefore) * 1000) / result.requests.total);
  return result;
}

let server: TenantryProcess | undefined;
const bare = spawn(process.execPath, ['--import', 'tsx', 'bench/support/bare-yoga.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
let failed = false;
let text = '';
try {
  log('starting Tenantry and the bare yoga server');
  server = (await TenantryProcess.start(env)).server;
  const bareUrl = await new Promise<string>((resolve) => createInterface({ input: bare.stdout! }).once('line', resolve));
  const sides: Side[] = [
    {
      name: 'Tenantry',
      url: `${server.url}/graphql`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${env.ADMIN_API_KEY}` },
      cpu: () => server!.cpuSeconds(),
      saturated: [],
      cpuPerRequest: [],
      single: [],
    },
    { name: 'bare yoga', url: bareUrl, headers: { 'content-type': 'application/json' }, cpu: () => processCpuSeconds(bare.pid!), saturated: [], cpuPerRequest: [], single: [] },
  ];
  for (const side of sides) await check(side);
  log('warming up');
  for (const side of sides) await run(side, connections, smoke ? 1 : 3);
  for (const side of sides) side.cpuPerRequest.length = 0;
  for (let round = 0; round < rounds; round++) {
    // Alternating which side goes first, so that neither always runs on a machine just warmed (or tired) by the other.
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) side.saturated.push(await run(side, connections, seconds));
    for (const side of order) side.single.push(await run(side, 1, Math.max(1, Math.round(seconds / 2))));
    log(`round ${round + 1} of ${rounds}: ${sides.map((s) => `${s.name} ${rps(s.saturated.at(-1)!).toFixed(0)} req/s`).join(', ')}`);
  }
  text = report(sides[0]!, sides[1]!);
} catch (err) {
  failed = true;
  console.error(err);
  if (server) console.error(server.output.join('').slice(-4000));
} finally {
  bare.kill('SIGTERM');
  await server?.stop();
  if (process.env.BENCH_DATABASE_URL) {
    const admin = new pg.Pool({ connectionString: cluster.url, max: 1 });
    await dropEverythingOf(admin, names).catch((err) => console.error('cleaning up failed:', err));
    await admin.end();
  }
  await cluster.stop();
  await rm(home, { recursive: true, force: true });
}

function rps(r: Result): number {
  return r.requests.total / r.duration;
}

/** Requests per second over all the runs of one kind: all requests over all the time. */
function rate(results: Result[]): number {
  return results.reduce((n, r) => n + r.requests.total, 0) / results.reduce((s, r) => s + r.duration, 0);
}

function report(t: Side, b: Side): string {
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  const perRound = t.saturated.map((r, i) => rps(r) / rps(b.saturated[i]!));
  const rows: [string, number, number, (v: number) => string][] = [
    [`requests/s, ${connections} connections (saturation)`, rate(t.saturated), rate(b.saturated), (v) => v.toFixed(0)],
    [`latency p50, ${connections} connections`, p50(t.saturated.map((r) => p50(r.latencies))), p50(b.saturated.map((r) => p50(r.latencies))), ms],
    [`server CPU per request, ${connections} connections`, p50(t.cpuPerRequest), p50(b.cpuPerRequest), (v) => `${(v * 1000).toFixed(0)} µs`],
    [`latency p99, ${connections} connections`, p50(t.saturated.map((r) => p99(r.latencies))), p50(b.saturated.map((r) => p99(r.latencies))), ms],
    ['requests/s, 1 connection', rate(t.single), rate(b.single), (v) => v.toFixed(0)],
    ['latency mean, 1 connection', p50(t.single.map((r) => mean(r.latencies))), p50(b.single.map((r) => mean(r.latencies))), ms],
  ];
  const lines = [
    '| `{ __typename }`, ADMIN key | Tenantry | bare yoga | Tenantry / bare |',
    '|---|---|---|---|',
    ...rows.map(([label, tv, bv, show]) => `| ${label} | ${show(tv)} | ${show(bv)} | ${(tv / bv).toFixed(2)}x |`),
  ];
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  return (
    `${lines.join('\n')}\n\n` +
    `Throughput ratio per round: ${perRound.map((v) => v.toFixed(2)).join(', ')}. ` +
    `${rounds} rounds of ${seconds} s at ${connections} connections and ${Math.max(1, Math.round(seconds / 2))} s at 1, Tenantry and bare yoga alternating.\n` +
    `Machine: ${machine}. Latencies at ${connections} connections and CPU per request are medians over the rounds. ` +
    'CPU per request is what each server process used (user + system, /proc) over its requests: bare / Tenantry is the throughput ratio ' +
    'a machine whose server is the bottleneck would show, whatever the load generator and the neighbours take.\n'
  );
}

if (text) {
  process.stdout.write(`\n${text}`);
  if (process.env.BENCH_OUTPUT) await writeFile(process.env.BENCH_OUTPUT, text);
}
process.exit(failed ? 1 : 0);
