// `npm run bench:provision-steps`: where one provisionTenant's time goes. Provisions N tenants
// (BENCH_ROUNDS, default 15) one at a time through the API of a Tenantry with a real PgBouncer,
// timing each provisioning step and the pool apply it waits for; each round also makes a bare
// CREATE ROLE + CREATE DATABASE ... TEMPLATE from the same template database and a usable tenant
// in bare SQL (bench/support/usable-tenant-floor.ts); then the pooler's minimum. The server is
// TEST_DATABASE_URL (a superuser URL), else an embedded PostgreSQL 18 started for the run.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { PROVISION_STEPS, runStep } from '../src/modules/provisioning/provisioning-steps.js';
import { startTestTenantry, PROVISION } from '../test/support/test-tenantry.js';
import { freePort } from '../test/support/free-port.js';
import { poolerFloor } from './support/pooler-floor.js';
import { bareTenants } from './support/usable-tenant-floor.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { startEmbeddedServer } from '../src/platform/embedded/embedded-server.js';
import { createLogger } from '../src/platform/logger.js';
import { tmpdir } from 'node:os';
import path from 'node:path';

const N = Number(process.env.BENCH_ROUNDS ?? 15);
const QUIET_MS = N > 3 ? 250 : 20;
const times = new Map<string, number[]>();
const add = (k: string, v: number) => (times.get(k) ?? times.set(k, []).get(k)!).push(v);
for (const [name, fn] of Object.entries(runStep)) {
  (runStep as any)[name] = async (ctx: any) => {
    const t0 = performance.now();
    try { return await fn(ctx); } finally { add(`step ${name}`, performance.now() - t0); }
  };
}
let stopEmbedded = async () => {};
if (!process.env.TEST_DATABASE_URL) {
  const server = await startEmbeddedServer({ home: await mkdtemp(path.join(tmpdir(), 'tenantry-bench-steps-pg-')), port: await freePort(), logger: createLogger('warn') });
  process.env.TEST_DATABASE_URL = server.url;
  stopEmbedded = server.stop;
}
const dir = await mkdtemp(path.join(tmpdir(), 'tenantry-bench-steps-'));
const t = await startTestTenantry({ env: { POOLER: process.env.POOLER ?? 'pgbouncer', POOLER_PORT: String(await freePort()), POOLER_DIR: dir, INVENTORY_INTERVAL_MS: '0', LOG_LEVEL: 'warn' } });
const pools = t.app.parts.pools as any;
const req = pools.request.bind(pools);
pools.request = async (...a: any[]) => { const t0 = performance.now(); try { return await req(...a); } finally { add('pools.request', performance.now() - t0); } };
const admin = new pg.Pool({ connectionString: process.env.TEST_DATABASE_URL!, max: 2 });
admin.on('error', () => undefined);
const total: number[] = [];
const floor: number[] = [];
const usable: number[] = [];
// Round by round: each provision, then the bare floor and a usable tenant in bare SQL, so that all
// three see the same moment of the machine.
let bare: ReturnType<typeof bareTenants> | undefined;
try {
  for (let i = 0; i < N; i++) {
    // Each starts on a settled machine (what a provision leaves running is not charged to the floor after it).
    await sleep(QUIET_MS);
    const t0 = performance.now();
    const r = await t.gql(PROVISION, { input: { slug: `prof-${i}`, displayName: 'p', maxConnections: 10 } });
    total.push(performance.now() - t0);
    if (r.data?.provisionTenant?.userErrors?.length) console.log(r.data.provisionTenant.userErrors);
    bare ??= bareTenants(admin, process.env.TEST_DATABASE_URL!, (await admin.query(`SELECT datname FROM pg_database WHERE datname LIKE $1 || '_tpl_%' ORDER BY datname LIMIT 1`, [t.controlDatabase])).rows[0].datname);
    await sleep(QUIET_MS);
    floor.push(await bare.bare(`${t.prefix}floor_${i}`));
    await sleep(QUIET_MS);
    usable.push(await bare.usable(`${t.prefix}usable_${i}`));
  }
} finally {
  await bare?.drop();
}
const poolerMin = (await poolerFloor(N, N)).minimum;
const p50 = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const version = (await admin.query<{ v: string }>(`SELECT pg_catalog.current_setting('server_version') AS v`)).rows[0]!.v;
console.log(`\n| p50, ${N} rounds | ms |\n|---|---|`);
console.log(`| provisionTenant (the mutation, end to end) | ${p50(total).toFixed(1)} |`);
console.log(`| bare SQL floor (CREATE ROLE + CREATE DATABASE ... TEMPLATE) | ${p50(floor).toFixed(1)} |`);
// In step order (the pool apply now runs beside the steps, so the order things finish in varies).
for (const k of [...PROVISION_STEPS.map((step) => `step ${step}`), 'pools.request']) console.log(`| ${k} | ${times.has(k) ? p50(times.get(k)!).toFixed(1) : 'n/a'} |`);
console.log(`| provisionTenant / floor | ${(p50(total) / p50(floor)).toFixed(2)}x |`);
console.log(`| a usable tenant in bare SQL (role with password, database, grants, one session in it) | ${p50(usable).toFixed(1)} |`);
console.log(`| pooler minimum (write pgbouncer.ini + RELOAD on a held admin connection, ${N} pools, a bare PgBouncer) | ${p50(poolerMin).toFixed(1)} |`);
console.log(`| lower bound: (usable tenant + pooler minimum) / floor | ${((p50(usable) + p50(poolerMin)) / p50(floor)).toFixed(2)}x |`);
console.log(`| provisionTenant / (usable tenant + pooler minimum): Tenantry's own share | ${(p50(total) / (p50(usable) + p50(poolerMin))).toFixed(2)}x |`);
console.log(`\nPostgreSQL ${version}.`);
await admin.end();
await t.cleanup();
await stopEmbedded();
await rm(dir, { recursive: true, force: true });
process.exit(0);
