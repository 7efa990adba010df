// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
// The PgCat driver without a PgCat: pgcat.toml is rendered and parsed back with smol-toml,
// SHOW output is mapped from rows shaped like PgCat's (src/admin.rs), and apply is run
// against a port where nothing listens. No database and no PgCat needed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'smol-toml';
import { PoolerConfigError, PoolerUnavailableError, type PoolSpec } from '../src/domain/pools/pooler-driver.js';
import { pgCatFiles, renderPgCatToml, type PgCatSettings } from '../src/domain/pools/pgcat/pgcat-config.js';
import { pgCatPoolName, toPgCatObservedPools, toPgCatPoolStats } from '../src/domain/pools/pgcat/pgcat-admin.js';
import { PgCatDriver, pgCatDifferences } from '../src/domain/pools/pgcat/pgcat-driver.js';
import { freePort } from './support/free-port.js';

const settings: PgCatSettings = {
  listenHost: '0.0.0.0',
  listenPort: 6432,
  serverHost: '127.0.0.1',
  serverPort: 5432,
  adminUser: 'tenantry_pooler',
  adminPassword: 'admin-secret',
  defaultPoolMode: 'transaction',
};

function spec(name: string, poolSize: number, maxDbConnections: number, mode: PoolSpec['mode'] = 'transaction'): PoolSpec {
  return { name, database: name, user: name, poolSize, maxDbConnections, mode };
}

const pools = [spec('tenant_acme_dev', 25, 50), spec('tenant_beta_prod', 10, 4, 'session'), spec('tenant_c', 5, 5)];
const passwords = new Map(pools.map((p) => [p.user, `pw-${p.user}`]));

type Doc = { general: Record<string, unknown>; pools: Record<string, Record<string, unknown> & { users: Record<string, Record<string, unknown>>; shards: Record<string, Record<string, unknown>> }> };

/** smol-toml builds null-prototype objects; plain ones compare with deepEqual. */
const parseDoc = (toml: string): Doc => JSON.parse(JSON.stringify(parse(toml))) as Doc;

const tmpDirs: string[] = [];
after(async () => {
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'tenantry-pgcat-'));
  tmpDirs.push(d);
  return d;
}


test('renders one [pools.<name>] per spec, parsed back with smol-toml', () => {
  const doc = parseDoc(renderPgCatToml(settings, pools, passwords));
  assert.deepEqual(doc.general, {
    host: '0.0.0.0',
    port: 6432,
    admin_username: 'tenantry_pooler',
    admin_password: 'admin-secret',
    enable_prometheus_exporter: false,
    prometheus_exporter_port: 9930,
  });
  assert.deepEqual(Object.keys(doc.pools).sort(), ['tenant_acme_dev', 'tenant_beta_prod', 'tenant_c']);

  const acme = doc.pools.tenant_acme_dev!;
  assert.equal(acme.pool_mode, 'transaction');
  assert.equal(acme.default_role, 'primary');
  assert.equal(acme.query_parser_enabled, false);
  assert.deepEqual(acme.users, { '0': { username: 'tenant_acme_dev', password: 'pw-tenant_acme_dev', pool_size: 25, min_pool_size: 0 } });
  assert.deepEqual(acme.shards, { '0': { servers: [['127.0.0.1', 5432, 'primary']], database: 'tenant_acme_dev' } });

  const beta = doc.pools.tenant_beta_prod!;
  assert.equal(beta.pool_mode, 'session');
  // No per-database cap in PgCat: the smaller of poolSize and maxDbConnections.
  assert.equal(beta.users['0']!.pool_size, 4);
  assert.equal(doc.pools.tenant_c!.users['0']!.pool_size, 5);
});

test('no pools still renders a [pools] table; passwords with quotes and newlines stay data', () => {
  const doc = parseDoc(renderPgCatToml(settings, [], new Map()));
  assert.deepEqual(doc.pools, {});

  const tricky = 'a"b\\c\n[general]\nport = 1';
  const one = [spec('tenant_x', 3, 3)];
  const parsed = parseDoc(renderPgCatToml({ ...settings, adminPassword: tricky }, one, new Map([['tenant_x', tricky]])));
  assert.equal(parsed.general.port, 6432);
  assert.equal(parsed.general.admin_password, tricky);
  assert.equal(parsed.pools.tenant_x!.users['0']!.password, tricky);
});

test('names that would break TOML keys or identifiers are refused with PoolerConfigError', () => {
  const bad = ['a"b', "a'b", 'a\nb', 'a]b', 'a.b', 'a b', '', '1abc', 'x'.repeat(64)];
  for (const name of bad) {
    assert.throws(() => renderPgCatToml(settings, [spec(name, 1, 1)], new Map([[name, 'pw']])), PoolerConfigError, JSON.stringify(name));
    const p = { ...spec('tenant_ok', 1, 1), database: name };
    assert.throws(() => renderPgCatToml(settings, [p], new Map([['tenant_ok', 'pw']])), PoolerConfigError, `database ${JSON.stringify(name)}`);
  }
  // Both open PgCat's admin console instead of a pool.
  for (const name of ['pgcat', 'pgbouncer']) {
    assert.throws(() => renderPgCatToml(settings, [spec(name, 1, 1)], new Map([[name, 'pw']])), PoolerConfigError, name);
  }
  assert.throws(() => renderPgCatToml({ ...settings, adminUser: 'ad"min' }, [], new Map()), PoolerConfigError);
  assert.throws(() => renderPgCatToml({ ...settings, serverHost: 'h"ost' }, [], new Map()), PoolerConfigError);
  assert.throws(() => renderPgCatToml(settings, [spec('tenant_a', 0, 1)], new Map([['tenant_a', 'pw']])), PoolerConfigError);
  assert.throws(() => renderPgCatToml(settings, [spec('tenant_a', 1, 1), spec('tenant_a', 2, 2)], new Map([['tenant_a', 'pw']])), PoolerConfigError);
  assert.throws(() => renderPgCatToml(settings, [spec('tenantry_pooler', 1, 1)], new Map([['tenantry_pooler', 'pw']])), PoolerConfigError);
});

test('a missing password, or a stored hash instead of a password, is refused', () => {
  const one = [spec('tenant_a', 1, 1)];
  assert.throws(() => renderPgCatToml(settings, one, new Map()), /no password for role "tenant_a"/);
  assert.throws(() => renderPgCatToml(settings, one, new Map([['tenant_a', '']])), PoolerConfigError);
  const scram = 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy';
  assert.throws(() => renderPgCatToml(settings, one, new Map([['tenant_a', scram]])), /PgCat needs the plaintext password/);
  assert.throws(() => renderPgCatToml(settings, one, new Map([['tenant_a', `md5${'0'.repeat(32)}`]])), /plaintext/);
  assert.throws(() => renderPgCatToml({ ...settings, adminPassword: scram }, [], new Map()), /adminPassword/);
});

test('SHOW DATABASES rows map to observed pools, named without the shard suffix', () => {
  // As PgCat's show_databases writes them: port as text, the Int4 columns already numbers.
  const row = (pool: string, database: string, size: number, mode: string) => ({
    name: `${pool}_shard_0_primary`,
    host: '127.0.0.1',
    port: '5432',
    database,
    force_user: pool,
    pool_size: size,
    min_pool_size: 0,
    reserve_pool: 0,
    pool_mode: mode,
    max_connections: size,
    current_connections: 1,
    paused: 0,
    disabled: 0,
  });
  const observed = toPgCatObservedPools([row('tenant_a', 'tenant_a', 25, 'transaction'), row('tenant_b', 'tenant_b_db', 4, 'session'), { ...row('tenant_a', 'other', 9, 'session'), name: 'tenant_a_shard_0_replica_0' }]);
  assert.deepEqual(observed, [
    { name: 'tenant_a', database: 'tenant_a', poolSize: 25, maxDbConnections: 25, mode: 'transaction' },
    { name: 'tenant_b', database: 'tenant_b_db', poolSize: 4, maxDbConnections: 4, mode: 'session' },
  ]);
  assert.equal(pgCatPoolName('my_shard_1_pool_shard_0_primary'), 'my_shard_1_pool');
  assert.equal(pgCatPoolName('no_suffix'), 'no_suffix');

  // Verification compares against the rendered size (min of poolSize and maxDbConnections).
  const wanted = [spec('tenant_a', 25, 50), { ...spec('tenant_b', 10, 4, 'session'), database: 'tenant_b_db' }];
  assert.deepEqual(pgCatDifferences(wanted, observed), []);
  assert.deepEqual(pgCatDifferences([spec('tenant_a', 30, 50)], observed), [
    'pool "tenant_a": pool_size is 25, expected 30',
    'pool "tenant_a": max_db_connections is 25, expected 30',
    'pool "tenant_b" should not exist',
  ]);
});

test('SHOW POOLS rows map to stats summed per pool', () => {
  // Numeric columns arrive as text; maxwait is seconds, maxwait_us the rest.
  const row = (database: string, user: string, v: Record<string, string>) => ({
    database,
    user,
    pool_mode: 'transaction',
    cl_idle: '0',
    cl_active: '0',
    cl_waiting: '0',
    cl_cancel_req: '0',
    sv_active: '0',
    sv_idle: '0',
    sv_used: '0',
    sv_tested: '0',
    sv_login: '0',
    maxwait: '0',
    maxwait_us: '0',
    ...v,
  });
  const stats = toPgCatPoolStats([
    row('tenant_a', 'tenant_a', { cl_active: '2', cl_waiting: '1', sv_active: '2', sv_idle: '3', maxwait: '1', maxwait_us: '500000' }),
    row('tenant_a', 'other', { cl_active: '1', maxwait: '0', maxwait_us: '250000' }),
    row('tenant_b', 'tenant_b', { sv_idle: '1' }),
    row('pgcat', 'tenantry_pooler', { cl_active: '1' }),
  ]);
  assert.deepEqual([...stats.keys()].sort(), ['tenant_a', 'tenant_b']);
  assert.deepEqual(stats.get('tenant_a'), { clientsActive: 3, clientsWaiting: 1, serversActive: 2, serversIdle: 3, maxWaitSeconds: 1.5 });
  assert.deepEqual(stats.get('tenant_b'), { clientsActive: 0, clientsWaiting: 0, serversActive: 0, serversIdle: 1, maxWaitSeconds: 0 });
});

test('apply with nothing listening writes the file atomically, throws PoolerUnavailableError; an invalid apply then changes nothing', async () => {
  const dir = await tempDir();
  const files = pgCatFiles(dir);
  const asked: string[][] = [];
  const driver = new PgCatDriver({
    settings: { ...settings, listenHost: '127.0.0.1', listenPort: await freePort() },
    files,
    passwords: async (roles) => {
      asked.push([...roles]);
      return passwords;
    },
    connectTimeoutMs: 2000,
  });
  assert.equal(driver.kind, 'pgcat');

  await assert.rejects(driver.apply(pools), PoolerUnavailableError);
  assert.deepEqual(asked, [pools.map((p) => p.user)]);
  const written = await readFile(files.config, 'utf8');
  assert.deepEqual(Object.keys(parseDoc(written).pools).sort(), ['tenant_acme_dev', 'tenant_beta_prod', 'tenant_c']);
  assert.equal((await stat(files.config)).mode & 0o777, 0o600, 'the file holds passwords');
  assert.deepEqual(await readdir(dir), ['pgcat.toml'], 'no temp file left, no last-good copy before PgCat accepted one');

  await assert.rejects(driver.apply([spec('bad.name', 1, 1)]), PoolerConfigError);
  await assert.rejects(driver.apply([spec('tenant_new', 1, 1)]), /no password for role "tenant_new"/);
  assert.equal(await readFile(files.config, 'utf8'), written);
  assert.deepEqual(await readdir(dir), ['pgcat.toml']);
  assert.equal(asked.length, 2, 'invalid names are refused before passwords are asked for');

  await assert.rejects(driver.observe(), PoolerUnavailableError);
  await assert.rejects(driver.stats(), PoolerUnavailableError);
  await driver.close();
});

test('an unreachable apply replaces an older file in place', async () => {
  const dir = await tempDir();
  const files = pgCatFiles(dir);
  await writeFile(files.config, 'old', { mode: 0o644 });
  const driver = new PgCatDriver({
    settings: { ...settings, listenHost: '127.0.0.1', listenPort: await freePort() },
    files,
    passwords: async () => passwords,
  });
  await assert.rejects(driver.apply([pools[0]!]), PoolerUnavailableError);
  const doc = parseDoc(await readFile(files.config, 'utf8'));
  assert.deepEqual(Object.keys(doc.pools), ['tenant_acme_dev']);
  assert.equal((await stat(files.config)).mode & 0o777, 0o600);
});
