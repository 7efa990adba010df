// @test-slow: started first (scripts/run-tests.ts)
// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
// Issue 10: the fleet benchmark at a tiny size, so that `npm run bench` cannot rot between the
// runs that fill BENCHMARKS.md. It measures every row and leaves nothing behind. The same for
// `npm run bench:pooler`, `npm run bench:pool-change`, `npm run bench:provision-steps` and
// `npm run bench:request`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { findPgBouncer } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { TEST_LIMITS } from './support/test-tenantry.js';

/** Runs a benchmark script to its end; fails the test with the output's tail unless it exits 0. */
async function runBench(script: string, env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, out.slice(-4000));
  return out;
}

test('npm run bench at sizes 2 and 4: every figure measured, nothing left on the server', async () => {
  const tag = randomBytes(4).toString('hex');
  const out = await runBench('bench/fleet.bench.ts', { BENCH_SMOKE: '1', BENCH_SIZES: '2,4', BENCH_DATABASE_URL: process.env.TEST_DATABASE_URL!, BENCH_TAG: tag });

  const rows = out.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| |'));
  assert.equal(rows.length, 47, out);
  for (const row of rows) {
    const cells = row.split('|').slice(2, -1).map((c) => c.trim());
    assert.equal(cells.length, 2, row);
    for (const cell of cells) assert.match(cell, /^\d[\d.,]*( ms| s| B| MB|x)?( \(\d+\.\d+x\))?$/, `${row}: every figure measured`);
  }

  const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL, statement_timeout: TEST_LIMITS.statementTimeoutMs });
  await admin.connect();
  try {
    const left = await admin.query(
      `SELECT datname AS name FROM pg_database WHERE datname LIKE $1 OR datname LIKE $2 UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE $2 OR rolname LIKE $1`,
      [`tenantry_b${tag}%`, `b${tag}\\_%`],
    );
    assert.deepEqual(left.rows, []);
  } finally {
    await admin.end();
  }
});

test('npm run bench:pooler at 2 and 4 pools: a table with every part measured', { skip: findPgBouncer() || process.env.CI === 'true' ? false : 'pgbouncer is not installed' }, async () => {
  const out = await runBench('bench/pgbouncer-reload.bench.ts', { BENCH_SIZES: '2,4', BENCH_ROUNDS: '1' });
  const rows = out.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| one pool change'));
  assert.equal(rows.length, 7, out);
  for (const row of rows) assert.match(row, /^\| [^|]+ \| \d[\d.]* ms \| \d[\d.]* ms \(\d+\.\dx\) \|$/, row);
});

test('npm run bench:pool-change at 4 tenants with 1 and 2 PgBouncers: every figure measured', { skip: findPgBouncer() || process.env.CI === 'true' ? false : 'pgbouncer is not installed' }, async () => {
  const out = await runBench('bench/pool-change.bench.ts', { BENCH_SIZES: '4', BENCH_SHARDS: '1,2', BENCH_ROUNDS: '2', BENCH_DATABASE_URL: process.env.TEST_DATABASE_URL! });
  const rows = out.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| 2 rounds'));
  assert.equal(rows.length, 17, out);
  for (const row of rows) {
    const cells = row.split('|').slice(2, -1).map((c) => c.trim());
    assert.equal(cells.length, 2, row);
    for (const cell of cells) assert.match(cell, /^\d[\d.]*( ms|x)?$/, `${row}: every figure measured`);
  }
});

test('npm run bench:provision-steps, two rounds: every step, the floor and the lower bound measured', { skip: findPgBouncer() || process.env.CI === 'true' ? false : 'pgbouncer is not installed' }, async () => {
  const out = await runBench('bench/provision-steps.bench.ts', { BENCH_ROUNDS: '2' });
  const rows = out.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| p50'));
  assert.deepEqual(
    rows.map((r) => r.split('|')[1]!.trim()),
    ['provisionTenant (the mutation, end to end)', 'bare SQL floor (CREATE ROLE + CREATE DATABASE ... TEMPLATE)', ...['ROLE', 'TEMPLATE', 'DATABASE', 'ACCESS', 'SCHEMA_VERSION', 'CREDENTIALS'].map((s) => `step ${s}`), 'pools.request', 'provisionTenant / floor',
      'a usable tenant in bare SQL (role with password, database, grants, one session in it)',
      'pooler minimum (write pgbouncer.ini + RELOAD on a held admin connection, 2 pools, a bare PgBouncer)',
      'lower bound: (usable tenant + pooler minimum) / floor',
      "provisionTenant / (usable tenant + pooler minimum): Tenantry's own share"],
    out,
  );
  for (const row of rows) assert.match(row.split('|')[2]!.trim(), /^\d[\d.]*x?$/, row);
});

test('npm run bench:request, one short round: Tenantry and bare yoga side by side, every figure measured, nothing left on the server', async () => {
  const tag = randomBytes(4).toString('hex');
  const out = await runBench('bench/request-path.bench.ts', { BENCH_SMOKE: '1', BENCH_DATABASE_URL: process.env.TEST_DATABASE_URL!, BENCH_TAG: tag });
  const rows = out.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| `{ __typename }`'));
  assert.equal(rows.length, 6, out);
  assert.match(out, /\| requests\/s, 10 connections \(saturation\) \|/, out);
  for (const row of rows) {
    const cells = row.split('|').slice(2, -1).map((c) => c.trim());
    assert.equal(cells.length, 3, row);
    assert.match(cells[0]!, /^\d[\d.]*( ms| µs)?$/, row);
    assert.match(cells[1]!, /^\d[\d.]*( ms| µs)?$/, row);
    assert.match(cells[2]!, /^\d+\.\d\dx$/, row);
  }

  const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL, statement_timeout: TEST_LIMITS.statementTimeoutMs });
  await admin.connect();
  try {
    const left = await admin.query(`SELECT datname AS name FROM pg_database WHERE datname LIKE $1 UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE $2`, [`tenantry_r${tag}%`, `r${tag}%`]);
    assert.deepEqual(left.rows, []);
  } finally {
    await admin.end();
  }
});
