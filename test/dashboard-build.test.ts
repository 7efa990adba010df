// @test-scope once: the dashboard's build does not depend on the server under test.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';

// The dashboard's GraphQL documents are validated against schema.graphql when it is built
// (dashboard/check-queries.mjs), so a schema change that breaks it fails the build, and CI.
// The build itself stays within the budget: ≤ 400 kB of JavaScript, ≤ 150 kB gzipped.

const run = promisify(execFile);
const DASHBOARD = path.resolve('dashboard');
const SCHEMA = path.resolve('schema.graphql');
let work: string;

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'tenantry-dashboard-'));
});
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** Runs the check on a dashboard folder and schema; its exit code and output. */
async function check(dashboardDir: string, schemaFile: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(DASHBOARD, 'check-queries.mjs'), dashboardDir, schemaFile]);
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

async function copyDashboard(name: string): Promise<string> {
  const dir = path.join(work, name);
  await cp(DASHBOARD, dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}dist`) });
  return dir;
}

test('the real dashboard passes the check against schema.graphql', async () => {
  const { code, output } = await check(DASHBOARD, SCHEMA);
  assert.equal(code, 0, output);
  assert.match(output, /\d+ GraphQL documents valid/);
});

test('a query asking for a field the schema does not have fails the check, naming it and where', async () => {
  const dir = await copyDashboard('renamed-field');
  const file = path.join(dir, 'src', 'queries.ts');
  const text = await readFile(file, 'utf8');
  assert.ok(text.includes('peak24h'));
  await writeFile(file, text.replace('peak24h', 'peakOfTheDay'));
  const { code, output } = await check(dir, SCHEMA);
  assert.equal(code, 1);
  assert.match(output, /queries\.ts:\d+: Cannot query field "peakOfTheDay" on type "ConnectionUsage"/);
});

test('a schema change that removes a field the dashboard uses fails the check', async () => {
  const schema = await readFile(SCHEMA, 'utf8');
  // Tenant.displayName renamed in the schema: the dashboard still asks for the old name.
  const changed = schema.replace(/^type Tenant implements Node \{[^}]*\}/m, (block) => block.replace(/\bdisplayName: String!/, 'title: String!'));
  assert.notEqual(changed, schema);
  const file = path.join(work, 'changed.graphql');
  await writeFile(file, changed);
  const { code, output } = await check(DASHBOARD, file);
  assert.equal(code, 1);
  assert.match(output, /Cannot query field "displayName" on type "Tenant"/);
});

test('the build is fresh and within budget: JavaScript ≤ 400 kB, ≤ 150 kB gzipped', { timeout: 120_000 }, async () => {
  const outDir = path.join(work, 'dist');
  const started = performance.now();
  await run(path.resolve('node_modules/.bin/vite'), ['build', '--config', path.join(DASHBOARD, 'vite.config.ts'), '--outDir', outDir]);
  const seconds = (performance.now() - started) / 1000;
  const assets = await readdir(path.join(outDir, 'assets'));
  const scripts = assets.filter((f) => f.endsWith('.js'));
  assert.ok(scripts.length > 0);
  let raw = 0;
  let gzipped = 0;
  for (const f of scripts) {
    const bytes = await readFile(path.join(outDir, 'assets', f));
    raw += bytes.length;
    gzipped += gzipSync(bytes, { level: 9 }).length;
  }
  console.log(`# dashboard build: ${seconds.toFixed(1)} s; JavaScript ${(raw / 1024).toFixed(1)} kB, ${(gzipped / 1024).toFixed(1)} kB gzipped (${scripts.length} files)`);
  assert.ok(raw <= 400 * 1024, `${raw} bytes of JavaScript`);
  assert.ok(gzipped <= 150 * 1024, `${gzipped} bytes gzipped`);
  // Hashed names: the build served from dashboard/dist is the one these sources make.
  assert.ok(await stat(path.join(DASHBOARD, 'dist', 'index.html')).catch(() => null), 'dashboard/dist is missing: run npm run build:dashboard');
  assert.deepEqual((await readdir(path.join(DASHBOARD, 'dist', 'assets'))).sort(), assets.sort(), 'dashboard/dist is stale: run npm run build:dashboard');
  // Nothing inline for the CSP to refuse: the page loads its script and styles from files.
  const html = await readFile(path.join(outDir, 'index.html'), 'utf8');
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=/);
  assert.match(html, /src="\/dashboard\/assets\/[^"]+\.js"/);
});
