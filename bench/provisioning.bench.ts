// Creating a tenant database: copying a prepared template database
// (`CREATE DATABASE ... TEMPLATE`) against replaying the template's SQL into an empty
// database. Reports the ratio measured in one run; machines here are noisy.
// Usage: npm run bench  (embedded PostgreSQL 18, or BENCH_DATABASE_URL)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import format from 'pg-format';
import { ClusterAdmin } from '../src/platform/db/cluster-admin.js';
import { startEmbeddedServer } from '../src/platform/embedded/embedded-server.js';
import { applyMigrations } from '../src/platform/db/migrations.js';
import { installExtensions } from '../src/modules/extensions/install-extensions.js';
import { schemaVersionLedger, TENANT_COMPONENT } from '../src/modules/templates/schema-version-ledger.js';
import { TemplateCatalog } from '../src/modules/templates/template-catalog.js';
import { TemplateDatabases } from '../src/modules/templates/template-databases.js';
import { createLogger } from '../src/platform/logger.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const logger = createLogger('warn');
let home: string | undefined;
let url = process.env.BENCH_DATABASE_URL;
let stopEmbedded = async () => {};
if (!url) {
  home = await mkdtemp(path.join(tmpdir(), 'tenantry-bench-'));
  const server = await startEmbeddedServer({ home, port: 54000 + Math.floor(Math.random() * 1000), logger });
  url = server.url;
  stopEmbedded = server.stop;
}

const cluster = new ClusterAdmin('bench', 'bench', url, true, { statementTimeoutMs: 600_000, lockTimeoutMs: 60_000, connectTimeoutMs: 10_000 });
const catalog = await TemplateCatalog.load('templates');
const version = catalog.resolve('default')!;
const templates = new TemplateDatabases({ catalog, controlDatabase: 'tenantry_bench', logger });
const template = await templates.ensure(cluster, version);
const facts = await cluster.facts();

async function time(label: string, create: (name: string) => Promise<void>): Promise<number> {
  const names = Array.from({ length: ROUNDS }, (_, i) => `tenantry_bench_${label}_${i}`);
  const started = performance.now();
  for (const name of names) await create(name);
  const elapsed = performance.now() - started;
  for (const name of names) await cluster.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', name));
  return elapsed / ROUNDS;
}

const copy = await time('copy', (name) => cluster.query(format('CREATE DATABASE %I TEMPLATE %I', name, template)).then(() => undefined));
const fileCopy = await time('filecopy', (name) => cluster.query(format('CREATE DATABASE %I TEMPLATE %I STRATEGY FILE_COPY', name, template)).then(() => undefined));
const replay = await time('replay', async (name) => {
  await cluster.query(format('CREATE DATABASE %I TEMPLATE template0', name));
  await cluster.withDatabase(name, async (client) => {
    await installExtensions(client, version.extensions);
    await applyMigrations(client, catalog.stepsTo(version).map((s) => s.migration), schemaVersionLedger({ component: TENANT_COMPONENT, appliedBy: 'bench', database: 'template' }), { lockKey: 1n });
  });
});

await templates.dropAll(cluster);
await cluster.close();
await stopEmbedded();
if (home) await rm(home, { recursive: true, force: true });

console.log(`PostgreSQL ${facts.serverVersion}, template ${version.template} ${version.version}, ${ROUNDS} databases each`);
console.log(`copy from template database : ${copy.toFixed(1)} ms per database`);
console.log(`copy, STRATEGY FILE_COPY    : ${fileCopy.toFixed(1)} ms per database`);
console.log(`replay SQL into empty       : ${replay.toFixed(1)} ms per database`);
console.log(`replay / copy               : ${(replay / copy).toFixed(2)}x`);
