// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

// Issue 14, item 16: a start that fails says why in words on a terminal, and in one JSON
// line for a log collector. The failure here: the port is taken (nothing else is touched).

let home: string;
let busy: Server;
let port: number;

before(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'tenantry-start-failure-'));
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  port = (busy.address() as { port: number }).port;
});
after(async () => {
  await new Promise((resolve) => busy.close(resolve));
  await rm(home, { recursive: true, force: true });
});

function env(): Record<string, string> {
  const e: Record<string, string> = { ...(process.env as Record<string, string>), TENANTRY_HOME: home, PORT: String(port), LOG_LEVEL: 'info' };
  for (const name of ['DATABASE_URL', 'ADMIN_API_KEY', 'CONTROL_DATABASE', 'TEST_DATABASE_URL']) delete e[name];
  return e;
}

/** Runs `command` and returns its exit code and everything it printed. */
function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

test('on a terminal the reason is written as text, one message per line, and no JSON', async () => {
  // script(1) runs it on a pseudo-terminal, as a person's shell would.
  const { code, output } = await run('script', ['-qec', `${process.execPath} --import tsx src/main.ts`, '/dev/null']);
  assert.equal(code, 1, output);
  const lines = output.replace(/\r/g, '').split('\n');
  assert.ok(lines.includes('Tenantry could not start:'), output);
  assert.ok(lines.some((l) => l.startsWith(`  port ${port} on 127.0.0.1 is in use`)), output);
  assert.ok(lines.some((l) => l.startsWith('  because: listen EADDRINUSE')), output);
  assert.deepEqual(lines.filter((l) => l.includes('could not start') && l.startsWith('{')), [], 'not as a JSON log line');
  assert.deepEqual(lines.filter((l) => /^\s+at /.test(l)), [], 'no stack trace at LOG_LEVEL=info');
});

test('without a terminal (a log collector) it is one JSON line with the error', async () => {
  const { code, output } = await run(process.execPath, ['--import', 'tsx', 'src/main.ts']);
  assert.equal(code, 1, output);
  const fatal = output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .find((l) => l.level === 60);
  assert.ok(fatal, output);
  assert.equal(fatal.msg, 'Tenantry could not start');
  assert.match(fatal.err.message, new RegExp(`port ${port} on 127.0.0.1 is in use`));
  assert.doesNotMatch(output, /^Tenantry could not start:$/m);
});
