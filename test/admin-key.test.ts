import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { prepareControlDatabase } from '../src/platform/db/control-database.js';
import { startEmbeddedServer } from '../src/platform/embedded/embedded-server.js';
import { hashApiKey } from '../src/modules/keys/api-keys.js';
import { createLogger } from '../src/platform/logger.js';
import { freePort } from './support/free-port.js';
import { startTestTenantry, testServerUrl, type TestTenantry } from './support/test-tenantry.js';

// `npm run admin-key`: a lost admin key is replaced from the command line, against the
// control database the server uses (DATABASE_URL, or the embedded server under TENANTRY_HOME).

const exec = promisify(execFile);
const KEY = /tnry_[0-9a-f]{64}/g;

async function adminKeyCommand(env: Record<string, string>, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const full: Record<string, string> = { ...(process.env as Record<string, string>), ...env };
  for (const name of ['DATABASE_URL', 'CONTROL_DATABASE', 'TENANTRY_HOME']) if (!(name in env)) delete full[name];
  try {
    const { stdout, stderr } = await exec('npm', ['run', '--silent', 'admin-key', '--', ...args], { env: full });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let t: TestTenantry;
before(async () => {
  t = await startTestTenantry();
});
after(() => t?.cleanup());

test('with DATABASE_URL: a new ADMIN key, printed once, stored as a hash, audited, and it works at once', async () => {
  const r = await adminKeyCommand({ DATABASE_URL: testServerUrl(), CONTROL_DATABASE: t.controlDatabase }, ['--name', 'recovered at 3am']);
  assert.equal(r.code, 0, r.stderr);
  const keys = r.stdout.match(KEY) ?? [];
  assert.equal(keys.length, 1, r.stdout);
  const key = keys[0]!;
  assert.doesNotMatch(r.stderr, KEY, 'the key goes to stdout only');

  const me = await t.gql('{ viewer { role keyName } }', undefined, key);
  assert.deepEqual(me.data.viewer, { role: 'ADMIN', keyName: 'recovered at 3am' });

  const control = new pg.Client({ connectionString: withDatabase(testServerUrl(), t.controlDatabase) });
  await control.connect();
  try {
    const { rows } = await control.query(`SELECT id, key_hash, key_prefix, role::text, created_by FROM api_keys WHERE name = 'recovered at 3am'`);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].key_hash, hashApiKey(key));
    assert.equal(rows[0].role, 'ADMIN');
    assert.match(rows[0].created_by, /^npm run admin-key/);
    // Only the hash: the key's text is nowhere in the control database's tables.
    const dump = await control.query(`SELECT row_to_json(k)::text AS j FROM api_keys k UNION ALL SELECT row_to_json(a)::text FROM audit_events a`);
    assert.ok(!dump.rows.some((row) => row.j.includes(key.slice(5))), 'the key text is stored somewhere');
    const audit = await control.query(`SELECT actor, subject, metadata FROM audit_events WHERE action = 'apikey.created' AND subject = $1`, [rows[0].id]);
    assert.equal(audit.rows.length, 1);
    assert.equal(audit.rows[0].metadata.source, 'npm run admin-key');
  } finally {
    await control.end();
  }
});

test('a control database that does not exist is a clear one-line refusal, nothing created', async () => {
  const r = await adminKeyCommand({ DATABASE_URL: testServerUrl(), CONTROL_DATABASE: `${t.controlDatabase}_nope` });
  assert.equal(r.code, 1);
  assert.match(r.stderr.trim(), /^admin-key: no control database "tenantry_t[0-9a-f]+_nope" on .*: start Tenantry once/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.doesNotMatch(r.stdout, KEY);
  const { rowCount } = await t.admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${t.controlDatabase}_nope`]);
  assert.equal(rowCount, 0);
});

test('without DATABASE_URL: the embedded server under TENANTRY_HOME, started for the moment when Tenantry is stopped', { timeout: 180_000 }, async () => {
  const home = await mkdtemp(path.join(tmpdir(), 'tenantry-admin-key-'));
  const env = { TENANTRY_HOME: home, EMBEDDED_PG_PORT: String(await freePort()), CONTROL_DATABASE: 'tenantry' };
  try {
    // Nothing set up yet: say what to do.
    const none = await adminKeyCommand(env);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no embedded PostgreSQL under TENANTRY_HOME=.*run `npm start` once first/);

    // A home as `npm start` leaves it: the server set up, the control database migrated, then stopped.
    const logger = createLogger('warn');
    let server = await startEmbeddedServer({ home, port: Number(env.EMBEDDED_PG_PORT), logger });
    await prepareControlDatabase(server.url, 'tenantry');
    await server.stop();

    const stopped = await adminKeyCommand(env);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stderr, /not running; starting it for this command/);
    const first = stopped.stdout.match(KEY)![0];
    const { stdout: ps } = await exec('ps', ['-eo', 'args']);
    assert.ok(!ps.split('\n').some((line) => line.includes(path.join(home, 'pgdata'))), 'the server it started was stopped again');

    // Tenantry running (its server up): the command uses it and leaves it running.
    server = await startEmbeddedServer({ home, port: Number(env.EMBEDDED_PG_PORT), logger });
    try {
      const running = await adminKeyCommand(env);
      assert.equal(running.code, 0, running.stderr);
      assert.doesNotMatch(running.stderr, /starting it/);
      const second = running.stdout.match(KEY)![0];
      const control = new pg.Client({ connectionString: withDatabase(server.url, 'tenantry') });
      await control.connect();
      try {
        const { rows } = await control.query(`SELECT key_hash FROM api_keys WHERE role = 'ADMIN' ORDER BY created_at`);
        assert.deepEqual(rows.map((r) => r.key_hash), [hashApiKey(first), hashApiKey(second)]);
      } finally {
        await control.end();
      }
    } finally {
      await server.stop();
    }
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
