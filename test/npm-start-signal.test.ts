// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { freePort } from './support/free-port.js';

// What a container runtime does: SIGTERM to the process it started, `npm start`. Everything
// that run started (node, the embedded PostgreSQL, PgBouncer when installed) must be gone
// when npm has exited.

const run = promisify(execFile);
const home = await mkdtemp(path.join(tmpdir(), 'tenantry-sigterm-'));
after(() => rm(home, { recursive: true, force: true }));

interface Proc {
  pid: number;
  ppid: number;
  args: string;
}

async function processes(): Promise<Proc[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,ppid=,args=']);
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

test('SIGTERM to `npm start` leaves no node, PostgreSQL or PgBouncer of that run behind', { timeout: 240_000 }, async () => {
  const [port, pgPort, poolerPort] = [await freePort(), await freePort(), await freePort()];
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    TENANTRY_HOME: home,
    PORT: String(port),
    EMBEDDED_PG_PORT: String(pgPort),
    POOLER_PORT: String(poolerPort),
    RECONCILE_INTERVAL_MS: '0',
  };
  for (const name of ['DATABASE_URL', 'ADMIN_API_KEY', 'CONTROL_DATABASE', 'POOLER', 'POOLER_DIR', 'TEST_DATABASE_URL']) delete env[name];
  const npm = spawn('npm', ['start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npm.stdout!.on('data', (d) => (out += d));
  npm.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => npm.once('exit', (code, signal) => resolve({ code, signal })));
  let stillRunning = true;
  void exited.then(() => (stillRunning = false));

  try {
    await until('the banner', async () => {
      if (!stillRunning) throw new Error(`npm start exited before it was ready:\n${out}`);
      return out.includes('Tenantry is ready');
    }, 180_000);

    // Everything this run started, while it runs: found by ancestry and by what it serves.
    const started = tree(await processes(), npm.pid!);
    const describe = (ps: Proc[]) => ps.map((p) => `${p.pid} ${p.args}`).join('\n');
    assert.ok(started.some((p) => /\bnode\b.*src\/main\.ts/.test(p.args)), `no node process under npm:\n${describe(started)}`);
    const ofThisRun = (p: Proc) => p.args.includes(home) || started.some((s) => s.pid === p.pid && s.args === p.args);
    const postgres = (await processes()).filter((p) => /postgres/.test(p.args) && p.args.includes(home));
    assert.ok(postgres.length > 0, 'the embedded PostgreSQL runs on the temporary TENANTRY_HOME');
    assert.equal(await listening(pgPort), true);
    const pooled = out.includes('Pooler: pgbouncer') || /pgbouncer/.test(describe(started));

    npm.kill('SIGTERM');
    const { code, signal } = await exited;
    assert.ok(code === 0 || signal === 'SIGTERM', `npm start ended with ${code ?? signal}:\n${out}`);

    // Stopping may finish a moment after npm has returned: wait for it, then name what is left.
    const leftovers = async () => (await processes()).filter(ofThisRun);
    await until('the run to stop', async () => (await leftovers()).length === 0, 30_000).catch(() => undefined);
    assert.deepEqual(describe(await leftovers()), '', 'processes of this run still running');
    assert.equal(await listening(port), false, 'the HTTP port is closed');
    assert.equal(await listening(pgPort), false, 'the embedded PostgreSQL stopped');
    if (pooled) assert.equal(await listening(poolerPort), false, 'PgBouncer stopped');
    assert.match(out, /shutting down/);
  } finally {
    if (stillRunning) npm.kill('SIGKILL');
    // Whatever a failed run left, stopped by pid so the next tests start clean.
    for (const p of (await processes()).filter((p) => p.args.includes(home))) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});
