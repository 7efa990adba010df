// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { freePort } from './support/free-port.js';
import { PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

// scripts/watch-usage.ts, the README's subscription client, run as a user runs it against
// a real server: a line per value; a wrong key, a server that is not there, a tenant that is
// not there: one clear line on stderr each, and exit code 1.

let t: TestTenantry;
before(async () => {
  t = await startTestTenantry({ env: { USAGE_SAMPLE_MS: '200' } });
  const r = await t.gql(PROVISION, { input: { slug: 'watched', displayName: 'Watched', maxConnections: 12 } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
});
after(() => t?.cleanup());

interface Run {
  code: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  kill(signal: NodeJS.Signals): void;
}

function watch(env: Record<string, string>, slug = 'watched'): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/watch-usage.ts', slug], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return {
    code: new Promise((resolve) => child.once('close', (code) => resolve(code))),
    stdout: () => stdout,
    stderr: () => stderr,
    kill: (signal) => child.kill(signal),
  };
}

const oneLine = (text: string) => text.trim().split('\n').length === 1;

test('a line per value with the right key and TENANTRY_URL; Ctrl-C ends it cleanly', async () => {
  const run = watch({ TENANTRY_URL: t.url, TENANTRY_KEY: t.adminKey });
  for (const deadline = Date.now() + 60_000; !run.stdout().includes('watched:'); ) {
    assert.ok(Date.now() < deadline, `no value arrived: ${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(run.stdout(), /^\S+Z {2}watched: \d+\/12 \(\d+%\), 24h peak \d+$/m);
  run.kill('SIGINT');
  assert.equal(await run.code, 0);
  assert.equal(run.stderr(), '');
});

test('a wrong key: one line naming TENANTRY_KEY, exit 1 (no retries first)', async () => {
  const run = watch({ TENANTRY_URL: t.url, TENANTRY_KEY: 'tnry_0000000000000000000000000000000000000000000000000000000000000000' });
  assert.equal(await run.code, 1);
  assert.ok(oneLine(run.stderr()), run.stderr());
  assert.match(run.stderr(), /^watch-usage: Tenantry at http:\/\/127\.0\.0\.1:\d+ refused the key in TENANTRY_KEY/);
  assert.equal(run.stdout(), '');
});

test('no server at TENANTRY_URL: one line saying it cannot be reached, exit 1', async () => {
  const run = watch({ TENANTRY_URL: `http://127.0.0.1:${await freePort()}`, TENANTRY_KEY: t.adminKey });
  assert.equal(await run.code, 1);
  assert.ok(oneLine(run.stderr()), run.stderr());
  assert.match(run.stderr(), /^watch-usage: cannot reach Tenantry at ws:\/\/127\.0\.0\.1:\d+\/graphql: .*ECONNREFUSED.*TENANTRY_URL/);
});

test('a tenant that does not exist: the API\'s answer in one line, exit 1', async () => {
  const run = watch({ TENANTRY_URL: t.url, TENANTRY_KEY: t.adminKey }, 'nobody-here');
  assert.equal(await run.code, 1);
  assert.ok(oneLine(run.stderr()), run.stderr());
  assert.match(run.stderr(), /^watch-usage: Tenantry answered: .*nobody-here/);
});

test('no key: the usage line, exit 2', async () => {
  const env = { ...process.env } as Record<string, string>;
  delete env.TENANTRY_KEY;
  const run = watch({ ...env, TENANTRY_KEY: '' });
  assert.equal(await run.code, 2);
  assert.match(run.stderr(), /^usage: TENANTRY_URL=.* TENANTRY_KEY=tnry_… npx tsx scripts\/watch-usage\.ts <tenant-slug>/);
});
