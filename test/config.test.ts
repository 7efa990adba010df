// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/platform/config.js';

// Invalid settings stop the start with one message naming every bad variable: the ones that
// do not parse and the rules between variables, together, so one attempt shows them all.

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message.split('\n').slice(1).map((line) => line.trim());
  }
  return [];
}

test('every invalid variable and every broken cross-field rule, in one message', () => {
  const found = problems({ PORT: 'abc', LOG_LEVEL: 'loud', QUOTA_MIN: '100', QUOTA_MAX: '50', DEFAULT_MAX_CONNECTIONS: '5', OVERCOMMIT_FACTOR: '-1' });
  assert.deepEqual(found.map((line) => line.split(':')[0]).sort(), ['DEFAULT_MAX_CONNECTIONS', 'LOG_LEVEL', 'OVERCOMMIT_FACTOR', 'PORT', 'QUOTA_MIN']);
  assert.ok(found.includes('QUOTA_MIN: QUOTA_MIN (100) must not exceed QUOTA_MAX (50)'), found.join('\n'));
  assert.ok(found.includes('DEFAULT_MAX_CONNECTIONS: DEFAULT_MAX_CONNECTIONS (5) must lie within QUOTA_MIN..QUOTA_MAX (100..50)'), found.join('\n'));
});

test('a cross-field rule still runs when an unrelated variable is invalid', () => {
  assert.deepEqual(
    problems({ REDIS_URL: 'x', TENANT_DB_PREFIX: '9bad', DEFAULT_MAX_CONNECTIONS: '600' }).sort(),
    ['DEFAULT_MAX_CONNECTIONS: DEFAULT_MAX_CONNECTIONS (600) must lie within QUOTA_MIN..QUOTA_MAX (10..500)', 'TENANT_DB_PREFIX: lowercase letters, digits and _, not starting with a digit'],
  );
});

test('a rule about a variable that did not parse is not reported twice', () => {
  assert.deepEqual(problems({ QUOTA_MIN: 'ten' }).map((line) => line.split(':')[0]), ['QUOTA_MIN']);
});

test('ports: the service, PgBouncer and the embedded server need one each', () => {
  assert.deepEqual(problems({ PORT: '6432' }), ['POOLER_PORT: PORT and POOLER_PORT are both 6432: the service and PgBouncer need a port each']);
  assert.deepEqual(problems({ PORT: '6432', POOLER: 'none' }), []);
  assert.deepEqual(problems({ EMBEDDED_PG_PORT: '4000' }), ['EMBEDDED_PG_PORT: EMBEDDED_PG_PORT (4000) must differ from PORT and POOLER_PORT']);
  // With DATABASE_URL there is no embedded server; PORT=0 (any free port) collides with nothing.
  assert.deepEqual(problems({ EMBEDDED_PG_PORT: '4000', DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/postgres' }), []);
  assert.deepEqual(problems({ PORT: '0', POOLER_PORT: '0', EMBEDDED_PG_PORT: '5000' }), []);
  // POOLER_SHARDS PgBouncers take POOLER_PORT and the ports after it.
  assert.deepEqual(problems({ PORT: '6434', POOLER_SHARDS: '4' }), ["POOLER_PORT: PORT 6434 is one of the PgBouncers' ports (6432-6435): the service and PgBouncer need a port each"]);
  assert.deepEqual(problems({ PORT: '6436', POOLER_SHARDS: '4' }), []);
  assert.deepEqual(problems({ EMBEDDED_PG_PORT: '6433', POOLER_SHARDS: '2' }), ["EMBEDDED_PG_PORT: EMBEDDED_PG_PORT (6433) must differ from PORT and the PgBouncers' ports (6432-6433)"]);
  assert.deepEqual(problems({ POOLER_PORT: '65535', POOLER_SHARDS: '2' }), ['POOLER_SHARDS: POOLER_SHARDS (2) PgBouncers from POOLER_PORT 65535 run past port 65535']);
});

test('POOLER is pgbouncer or none: PgCat is refused at once, saying why', () => {
  assert.deepEqual(problems({ POOLER: 'pgcat' }), [
    "POOLER: pgbouncer or none (PgCat is not supported: it needs every tenant's plaintext password, and its admin API cannot be exercised here)",
  ]);
});

test('the defaults are valid', () => {
  const config = loadConfig({});
  assert.equal(config.PORT, 4000);
  assert.equal(config.DEFAULT_MAX_CONNECTIONS, 50);
});

test('npm start with invalid settings: exit code 2 and every problem on stderr, nothing started', async () => {
  const env = { ...process.env, PORT: 'abc', QUOTA_MIN: '100', QUOTA_MAX: '50', TENANTRY_HOME: '/nonexistent/never-created' };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.equal(code, 2);
  assert.match(stderr, /^Invalid configuration:\n {2}PORT: .*\n {2}QUOTA_MIN: QUOTA_MIN \(100\) must not exceed QUOTA_MAX \(50\)\n/);
});
