// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { freePort } from './support/free-port.js';

// What a container runtime does: SIGTERM to the process it started, `npm start`; and what a
// terminal does on Ctrl-C: SIGINT to the whole foreground process group. Everything that run
// started (node, the embedded PostgreSQL, PgBouncer when installed) must be gone when npm has
// exited, stopped in order by Tenantry (issue 14, item 14): no stack trace, a "stopped" line.

const exec = promisify(execFile);
const home = await mkdtemp(path.join(tmpdir(), 'tenantry-sigterm-'));

interface Proc {
  pid: number;
  ppid: number;
  args: string;
}

async function processes(): Promise<Proc[]> {
  const { stdout } = await exec('ps', ['-eo', 'pid=,ppid=,args=']);
  return stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
}

/** The process and everything below it. */
function tree(all: Proc[], root: number): Proc[] {
  const found = all.filter((p) => p.pid === root);
  for (let i = 0; i < found.length; i++) found.push(...all.filter((p) => p.ppid === found[i]!.pid));
  return found;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); ) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Run {
  npm: ReturnType<typeof spawn>;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ports: { port: number; pgPort: number; poolerPort: number };
}

// One set for the file: the embedded server keeps the port of its first start (embedded.json).
const ports = { port: await freePort(), pgPort: await freePort(), poolerPort: await freePort() };

/** `npm start` on the test's TENANTRY_HOME, ready (its banner shown). */
async function startNpm(options: { detached?: boolean } = {}): Promise<Run> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    TENANTRY_HOME: home,
    PORT: String(ports.port),
    EMBEDDED_PG_PORT: String(ports.pgPort),
    POOLER_PORT: String(ports.poolerPort),
    RECONCILE_INTERVAL_MS: '0',
  };
  for (const name of ['DATABASE_URL', 'ADMIN_API_KEY', 'CONTROL_DATABASE', 'POOLER', 'POOLER_DIR', 'TEST_DATABASE_URL']) delete env[name];
  const npm = spawn('npm', ['start'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  let out = '';
  npm.stdout!.on('data', (d) => (out += d));
  npm.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => npm.once('exit', (code, signal) => resolve({ code, signal })));
  let stillRunning = true;
  void exited.then(() => (stillRunning = false));
  const run = { npm, output: () => out, exited, ports };
  runs.push(run);
  await until('the banner', async () => {
    if (!stillRunning) throw new Error(`npm start exited before it was ready:\n${out}`);
    return out.includes('Tenantry is ready');
  }, 180_000);
  return run;
}

const runs: Run[] = [];
after(async () => {
  // Whatever a failed run left, stopped by pid so the next tests start clean: the tree of each
  // npm still running (found by ancestry before anything is killed) and whatever runs on the test's home.
  const all = await processes();
  const running = runs.filter((run) => run.npm.exitCode === null && run.npm.signalCode === null);
  const left = [...running.flatMap((run) => tree(all, run.npm.pid!)), ...all.filter((p) => p.args.includes(home))];
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await rm(home, { recursive: true, force: true });
});

const describe = (ps: Proc[]) => ps.map((p) => `${p.pid} ${p.args}`).join('\n');

/** Everything this run started, while it runs: found by ancestry and by what it serves. */
async function startedBy(run: Run): Promise<(p: Proc) => boolean> {
  const started = tree(await processes(), run.npm.pid!);
  assert.ok(started.some((p) => /\bnode\b.*src\/main\.ts/.test(p.args)), `no node process under npm:\n${describe(started)}`);
  const postgres = (await processes()).filter((p) => /postgres/.test(p.args) && p.args.includes(home));
  assert.ok(postgres.length > 0, 'the embedded PostgreSQL runs on the temporary TENANTRY_HOME');
  assert.equal(await listening(run.ports.pgPort), true);
  return (p: Proc) => p.args.includes(home) || started.some((s) => s.pid === p.pid && s.args === p.args);
}

/** Nothing of the run is left: processes (waited for: stopping may end a moment after npm), ports. */
async function nothingLeft(run: Run, ofThisRun: (p: Proc) => boolean): Promise<void> {
  const leftovers = async () => (await processes()).filter(ofThisRun);
  await until('the run to stop', async () => (await leftovers()).length === 0, 30_000).catch(() => undefined);
  assert.deepEqual(describe(await leftovers()), '', 'processes of this run still running');
  assert.equal(await listening(run.ports.port), false, 'the HTTP port is closed');
  assert.equal(await listening(run.ports.pgPort), false, 'the embedded PostgreSQL stopped');
  assert.equal(await listening(run.ports.poolerPort), false, 'PgBouncer stopped');
}

test('SIGTERM to `npm start` leaves no node, PostgreSQL or PgBouncer of that run behind', { timeout: 240_000 }, async () => {
  const run = await startNpm();
  const ofThisRun = await startedBy(run);
  run.npm.kill('SIGTERM');
  const { code, signal } = await run.exited;
  assert.ok(code === 0 || signal === 'SIGTERM', `npm start ended with ${code ?? signal}:\n${run.output()}`);
  await nothingLeft(run, ofThisRun);
  assert.match(run.output(), /shutting down/);
});

test('Ctrl-C in a terminal (SIGINT to the whole process group) stops the service, then PgBouncer and PostgreSQL, in order: a "stopped" line, no stack trace, nothing left', { timeout: 240_000 }, async () => {
  // Its own process group, as a terminal's foreground job; the second start on this home (the key exists).
  const run = await startNpm({ detached: true });
  const ofThisRun = await startedBy(run);
  // What the banner points to when the key is not shown exists in the README.
  const pointer = /\(README: "([^"]+)"\)/.exec(run.output());
  assert.ok(pointer, `the banner says where to read about a lost key:\n${run.output()}`);
  assert.ok((await readFile('README.md', 'utf8')).includes(`**${pointer[1]}**`), `README.md has "${pointer[1]}"`);

  process.kill(-run.npm.pid!, 'SIGINT');
  const { code, signal } = await run.exited;
  assert.ok(code === 0 || signal === 'SIGINT', `npm start ended with ${code ?? signal}:\n${run.output()}`);
  await nothingLeft(run, ofThisRun);
  const lines = run.output().split('\n');
  assert.ok(lines.some((l) => /"msg":"stopped"/.test(l)), `a "stopped" line:\n${run.output()}`);
  assert.deepEqual(lines.filter((l) => /"stack"|^\s+at /.test(l)), [], 'no stack trace');
  assert.deepEqual(lines.filter((l) => /"level":(50|60)/.test(l)), [], 'no error logged');
});
