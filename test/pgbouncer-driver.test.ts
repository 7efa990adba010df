// PgBouncerDriver against a real PostgreSQL (TEST_DATABASE_URL, a superuser) and a real
// PgBouncer started for this file, with tenants authenticated through auth_query.
// Everything it creates carries a random prefix and is removed at the end.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import format from 'pg-format';
import { ClusterAdmin } from '../src/platform/db/cluster-admin.js';
import { describeServer, withDatabase } from '../src/platform/db/connection-url.js';
import { createLogger } from '../src/platform/logger.js';
import { generatePassword, scramSha256Verifier } from '../src/modules/tenants/credentials.js';
import { PoolerConfigError, PoolerFilesError, PoolerUnavailableError, type ObservedPool, type PoolSpec } from '../src/modules/pools/pooler-driver.js';
import { IniRenderer, pgBouncerFiles, poolSpecProblems, renderPgBouncerIni, type PgBouncerSettings } from '../src/modules/pools/pgbouncer/pgbouncer-config.js';
import { clientSlots } from '../src/modules/pools/pgbouncer/client-slots.js';
import { AdminConsole } from '../src/modules/pools/pgbouncer/admin-console.js';
import { PgBouncerDriver } from '../src/modules/pools/pgbouncer/pgbouncer-driver.js';
import { findPgBouncer, PgBouncerProcess } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { PoolerAuth } from '../src/modules/pools/pgbouncer/pooler-auth.js';
import { AUTH_QUERY } from '../src/modules/pools/pooler-auth.sql.js';
import { freePort } from './support/free-port.js';
import { TEST_LIMITS } from './support/test-tenantry.js';

const superuserUrl = process.env.TEST_DATABASE_URL;
const binary = findPgBouncer();
// On CI a missing PgBouncer is a failure (before() throws); elsewhere the pooler tests skip.
const skip = binary || process.env.CI === 'true' ? false : 'pgbouncer is not installed (not on PATH, not in /usr/sbin); with CI=true this fails';

const prefix = `pgbt_${randomBytes(4).toString('hex')}_`;
const tenants = ['a', 'b', 'c'].map((k) => ({ name: prefix + k, password: generatePassword() }));
const [ta, tb, tc] = tenants as [(typeof tenants)[0], (typeof tenants)[0], (typeof tenants)[0]];
const roles = { lookupRole: `${prefix}lookup`, authUser: `${prefix}auth` };
/** Owns a database of its own, like the control plane owns tenant databases. */
const owner = { name: `${prefix}owner`, password: generatePassword() };
const authPassword = generatePassword();

let superuser: pg.Pool;
let cluster: ClusterAdmin;
let tmp: string;
let proc: PgBouncerProcess;
let driver: PgBouncerDriver;
let serverDemandsPasswords = false;
const openClients = new Set<pg.Client>();

function spec(t: { name: string }, poolSize: number, maxDbConnections: number, mode: PoolSpec['mode'] = 'transaction'): PoolSpec {
  return { name: t.name, database: t.name, user: t.name, poolSize, maxDbConnections, mode };
}

const byName = (pools: ObservedPool[]) => new Map(pools.map((p) => [p.name, p]));

/** Only this file's pools: other files may not share the pooler, but be strict anyway. */
async function observedOwn(): Promise<ObservedPool[]> {
  return (await driver.observe()).filter((p) => p.name.startsWith(prefix)).sort((x, y) => x.name.localeCompare(y.name));
}

async function throughPooler(t: { name: string }, password: string, database = t.name): Promise<pg.Client> {
  const client = new pg.Client({ ...driver.address, user: t.name, password, database });
  client.on('error', () => undefined);
  openClients.add(client);
  try {
    await client.connect();
  } catch (err) {
    openClients.delete(client);
    throw err;
  }
  return client;
}

async function release(client: pg.Client): Promise<void> {
  openClients.delete(client);
  await client.end().catch(() => undefined);
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, tries = 200): Promise<T> {
  let last = await probe();
  for (let i = 0; i < tries && !ok(last); i++) {
    await new Promise((r) => setTimeout(r, 50));
    last = await probe();
  }
  return last;
}

const readDir = async (dir: string) =>
  Promise.all((await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map(async (e) => ({ file: e.name, text: await readFile(path.join(dir, e.name), 'utf8') })));

/** What the lookup function answers for `who`, asked by the auth user inside `database`. */
async function lookup(database: string, who: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: withDatabase(superuserUrl!, database) });
  await c.connect();
  try {
    await c.query(format('SET ROLE %I', roles.authUser));
    const { rows } = await c.query<{ username: string }>('SELECT username FROM tenantry.pgbouncer_lookup($1)', [who]);
    return rows.map((r) => r.username);
  } finally {
    await c.end();
  }
}

before(async () => {
  if (skip) return;
  if (!superuserUrl) throw new Error('TEST_DATABASE_URL (a superuser URL) is required');
  if (!binary) throw new Error('CI=true and pgbouncer is not installed: install PgBouncer 1.14+');
  superuser = new pg.Pool({ connectionString: superuserUrl, max: 2 });
  superuser.on('error', () => undefined);
  cluster = new ClusterAdmin('pgbt', 'pgbt', superuserUrl, true, TEST_LIMITS);
  const auth = await PoolerAuth.prepare(cluster, roles, authPassword, createLogger('silent'));
  await superuser.query(format('CREATE ROLE %I LOGIN PASSWORD %L', owner.name, scramSha256Verifier(owner.password)));
  for (const t of tenants) {
    await superuser.query(format('CREATE ROLE %I LOGIN CONNECTION LIMIT 10 PASSWORD %L', t.name, scramSha256Verifier(t.password)));
    // As the control plane sets tenant databases up: owned by someone else, CONNECT for the tenant only.
    await superuser.query(format('CREATE DATABASE %I OWNER %I TEMPLATE template0', t.name, owner.name));
    await superuser.query(format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', t.name));
    await superuser.query(format('GRANT CONNECT ON DATABASE %I TO %I', t.name, t.name));
    await auth.allowLogin(cluster, t.name);
  }
  const probe = new pg.Client({ ...describeServer(superuserUrl), user: ta.name, password: 'not-the-password', database: ta.name });
  serverDemandsPasswords = await probe.connect().then(() => false, () => true);
  await probe.end().catch(() => undefined);

  tmp = await mkdtemp(path.join(tmpdir(), 'pgbt-'));
  await chmod(tmp, 0o711); // PgBouncer runs as postgres when we are root: it must reach its folder
  const server = describeServer(superuserUrl);
  proc = new PgBouncerProcess({
    dir: path.join(tmp, 'pgbouncer'),
    listenPort: await freePort(),
    serverHost: server.host,
    serverPort: server.port,
    binary,
    authUser: roles.authUser,
    authQuery: AUTH_QUERY,
    serverIdleTimeout: 30,
    supervise: false,
  });
  driver = new PgBouncerDriver({
    settings: proc.settings,
    admin: proc.admin,
    authUser: { user: roles.authUser, password: authPassword },
    clientSlots: { perConnection: 5, fileLimit: 20_000 },
    fileOwner: proc.fileOwner,
  });
  await proc.claim();
  await driver.writeFiles([]);
  await proc.start();
});

after(async () => {
  if (skip) return;
  await Promise.all([...openClients].map(release));
  await driver?.close().catch(() => undefined);
  await proc?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
  await cluster?.close();
  if (superuser) {
    for (const t of tenants) await superuser.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', t.name)).catch(() => undefined);
    for (const r of [...tenants.map((t) => t.name), owner.name, roles.authUser, roles.lookupRole]) {
      await superuser.query(format('DROP ROLE IF EXISTS %I', r)).catch(() => undefined);
    }
    await superuser.end();
  }
});

test('pool specs with unsafe names or sizes are refused before rendering', () => {
  const ok = spec(ta, 5, 5);
  assert.deepEqual(poolSpecProblems([ok]), []);
  const bad: PoolSpec[] = [
    { ...ok, name: 'x\npool_size=999' },
    { ...ok, name: 'x;y' },
    { ...ok, name: 'x y' },
    { ...ok, database: 'x=1' },
    { ...ok, user: 'u"' },
    { ...ok, name: 'pgbouncer' },
    { ...ok, poolSize: 0 },
    { ...ok, maxDbConnections: 2.5 },
    { ...ok, mode: 'statement' as PoolSpec['mode'] },
  ];
  for (const b of bad) assert.equal(poolSpecProblems([b]).length, 1, JSON.stringify(b));
  assert.equal(poolSpecProblems([ok, { ...ok }]).length, 1, 'duplicate names');
});

test('max_client_conn follows the fleet, within the file-descriptor limit', () => {
  const pools = [{ maxDbConnections: 50 }, { maxDbConnections: 30 }];
  assert.deepEqual(clientSlots(pools, { perConnection: 5, fileLimit: 20_000 }), { maxClientConn: 400, wanted: 400, capped: false });
  assert.deepEqual(clientSlots([], { perConnection: 5, fileLimit: 20_000 }), { maxClientConn: 100, wanted: 100, capped: false }, 'a floor of 100');
  assert.deepEqual(clientSlots(pools, { perConnection: 5, fixed: 3000, fileLimit: 20_000 }), { maxClientConn: 3000, wanted: 3000, capped: false });
  // 1024 descriptors: 80 go to servers, 64 to PgBouncer itself.
  assert.deepEqual(clientSlots(pools, { perConnection: 50, fileLimit: 1024 }), { maxClientConn: 1024 - 80 - 64, wanted: 4000, capped: true });
});

test('apply two pools: SHOW DATABASES lists them with their sizes; max_client_conn is sized from them', { skip }, async () => {
  await driver.apply([spec(ta, 3, 4), spec(tb, 2, 6, 'session')]);
  assert.deepEqual(await observedOwn(), [
    { name: ta.name, database: ta.name, poolSize: 3, maxDbConnections: 4, mode: 'transaction', host: proc.settings.serverHost, port: proc.settings.serverPort },
    { name: tb.name, database: tb.name, poolSize: 2, maxDbConnections: 6, mode: 'session', host: proc.settings.serverHost, port: proc.settings.serverPort },
  ]);
  const ini = await readFile(proc.settings.files.ini, 'utf8');
  assert.match(ini, /^max_client_conn = 100$/m, '(5 + 7) x 5 is under the floor of 100');
  assert.match(ini, new RegExp(`^${ta.name} = .* pool_size=3 max_db_connections=5 `, 'm'), 'one server slot beyond the pool, for auth_query');
  assert.match(ini, /^server_idle_timeout = 30$/m);
  assert.match(ini, new RegExp(`^${ta.name} = .* auth_user=${roles.authUser} `, 'm'), 'auth_user on each pool\'s line');
  assert.doesNotMatch(ini, /^auth_user\s*=/m, 'no global auth_user: it would reach the admin console too');
});

test('a tenant logs in through PgBouncer with its own password, looked up by auth_query; a wrong one fails', { skip }, async (t: TestContext) => {
  const client = await throughPooler(ta, ta.password);
  const { rows } = await client.query<{ who: string; db: string }>('SELECT current_user AS who, current_database() AS db');
  assert.deepEqual(rows[0], { who: ta.name, db: ta.name });
  await release(client);
  await assert.rejects(throughPooler(ta, 'not-the-password'), /SASL authentication failed|password authentication failed/);
  t.diagnostic(serverDemandsPasswords ? 'server demands a password: SCRAM pass-through exercised' : 'server trusts this login: SCRAM pass-through NOT exercised');
});

test('the admin console refuses a tenant\'s role, with its own password or a wrong one, and an unknown role; it does not make them wait', { skip }, async () => {
  // The timeout is far beyond a refusal and far below PgBouncer's own query_wait_timeout (120 s):
  // a login left waiting for an auth_query ends in "timeout expired", never in a refusal.
  const toConsole = async (user: string, password: string) => {
    const client = new pg.Client({ ...driver.address, user, password, database: 'pgbouncer', connectionTimeoutMillis: 30_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  for (const [user, password] of [[ta.name, ta.password], [ta.name, 'not-the-password'], [`${prefix}nobody`, 'whatever']] as const) {
    await assert.rejects(toConsole(user, password), (err: Error) => {
      assert.match(err.message, /SASL authentication failed|no such user|not allowed/, `${user}: ${err.message}`);
      return true;
    });
  }
  await driver.ping(); // the console's own user still gets in
});

test('another tenant\'s role, a superuser and an unknown role cannot log in to a tenant pool', { skip }, async () => {
  await assert.rejects(throughPooler(tb, tb.password, ta.name), /no such user|SASL authentication failed|password authentication failed/);
  await assert.rejects(throughPooler({ name: describeServer(superuserUrl!).user }, 'whatever', ta.name), /no such user|SASL authentication failed/);
  await assert.rejects(throughPooler({ name: `${prefix}nobody` }, 'whatever', ta.name), /no such user|SASL authentication failed/);
});

test('a rotated password works through the pooler at once and the old one fails, with no file rewritten', { skip }, async (t: TestContext) => {
  const { files } = proc.settings;
  const before = { ini: await readFile(files.ini, 'utf8'), auth: await readFile(files.authFile, 'utf8'), mtime: (await stat(files.authFile)).mtimeMs };
  const held = await throughPooler(ta, ta.password); // an open session survives a rotation, as it would directly
  const rotated = generatePassword();
  await superuser.query(format('ALTER ROLE %I PASSWORD %L', ta.name, scramSha256Verifier(rotated)));

  // A new server connection is needed for the pass-through to be exercised: force one.
  await held.query('BEGIN');
  const fresh = await throughPooler(ta, rotated);
  assert.equal((await fresh.query('SELECT current_user AS u')).rows[0].u, ta.name);
  await release(fresh);
  await held.query('COMMIT');
  await release(held);
  await assert.rejects(throughPooler(ta, ta.password), /SASL authentication failed|password authentication failed/);
  ta.password = rotated;

  assert.equal(await readFile(files.ini, 'utf8'), before.ini);
  assert.equal(await readFile(files.authFile, 'utf8'), before.auth);
  assert.equal((await stat(files.authFile)).mtimeMs, before.mtime);
  t.diagnostic(serverDemandsPasswords ? 'server logins used the rotated verifier (pass-through)' : 'server trusts logins: only PgBouncer\'s own check is exercised');
});

test('the lookup function answers only for a tenant of this database, never a superuser or the owner', { skip }, async () => {
  assert.deepEqual(await lookup(ta.name, ta.name), [ta.name]);
  assert.deepEqual(await lookup(ta.name, tb.name), [], 'no CONNECT on this database');
  assert.deepEqual(await lookup(ta.name, describeServer(superuserUrl!).user), [], 'a superuser');
  assert.deepEqual(await lookup(ta.name, owner.name), [], 'the database owner');
  await superuser.query(format('GRANT CONNECT ON DATABASE %I TO %I', ta.name, tb.name));
  await superuser.query(format('ALTER ROLE %I CREATEDB', tb.name));
  assert.deepEqual(await lookup(ta.name, tb.name), [], 'a role that can create databases');
  await superuser.query(format('ALTER ROLE %I NOCREATEDB', tb.name));
  await superuser.query(format('REVOKE CONNECT ON DATABASE %I FROM %I', ta.name, tb.name));

  // Nobody but the auth user may run it.
  const c = new pg.Client({ connectionString: withDatabase(superuserUrl!, ta.name) });
  await c.connect();
  try {
    await c.query(format('SET ROLE %I', ta.name));
    await assert.rejects(c.query('SELECT * FROM tenantry.pgbouncer_lookup($1)', [ta.name]), /permission denied/);
    await c.query('RESET ROLE');
    const fn = await c.query(`SELECT pg_get_userbyid(proowner) AS owner, prosecdef, proconfig FROM pg_proc WHERE oid = 'tenantry.pgbouncer_lookup(text)'::regprocedure`);
    assert.deepEqual(fn.rows[0], { owner: roles.lookupRole, prosecdef: true, proconfig: ['search_path=pg_catalog, pg_temp'] });
  } finally {
    await c.end();
  }
});

test('a resized pool is visible after apply', { skip }, async () => {
  await driver.apply([spec(ta, 5, 7), spec(tb, 2, 6, 'session')]);
  const a = byName(await observedOwn()).get(ta.name);
  assert.equal(a?.poolSize, 5);
  assert.equal(a?.maxDbConnections, 7);
});

test('at its quota (pool_size = max_db_connections = 2) a third session client waits, and stats() shows it', { skip }, async () => {
  await driver.apply([spec(ta, 5, 7), spec(tb, 2, 6, 'session'), spec(tc, 2, 2, 'session')]);
  const first = await throughPooler(tc, tc.password);
  const second = await throughPooler(tc, tc.password);
  await first.query('BEGIN; SELECT 1');
  await second.query('BEGIN; SELECT 1');

  const thirdClient = new pg.Client({ ...driver.address, user: tc.name, password: tc.password, database: tc.name });
  thirdClient.on('error', () => undefined);
  openClients.add(thirdClient);
  const third = thirdClient.connect().then(() => thirdClient.query<{ one: number }>('SELECT 1 AS one'));
  third.catch(() => undefined); // awaited below; keeps an early failure from being unhandled

  const waiting = await until(
    async () => (await driver.stats()).get(tc.name),
    (s) => (s?.clientsWaiting ?? 0) >= 1,
  );
  assert.ok(waiting, 'SHOW POOLS lists the pool');
  assert.ok(waiting.clientsWaiting >= 1, `a client waits: ${JSON.stringify(waiting)}`);
  assert.ok(waiting.clientsActive >= 2, `two clients hold servers: ${JSON.stringify(waiting)}`);
  assert.ok(waiting.serversActive >= 1 && waiting.serversActive <= 2, `servers capped at 2: ${JSON.stringify(waiting)}`);
  for (const v of Object.values(waiting)) assert.ok(Number.isFinite(v));

  await first.query('COMMIT');
  await release(first); // session mode: the server goes back to the pool when its client leaves
  assert.equal((await third).rows[0]?.one, 1);
  await release(second);
  await release(thirdClient);
});

test('a removed pool is gone', { skip }, async () => {
  await driver.apply([spec(ta, 5, 7), spec(tc, 2, 2, 'session')]);
  assert.deepEqual((await observedOwn()).map((p) => p.name), [ta.name, tc.name]);
  // PgBouncer does not say which: an unknown database fails like a wrong password.
  await assert.rejects(throughPooler(tb, tb.password), /no such database|SASL authentication failed/);
});

test('an invalid spec is refused and nothing is written', { skip }, async () => {
  const { files } = proc.settings;
  const before = await readDir(files.dir);
  for (const name of [`${ta.name}\nevil = host=1.2.3.4`, `${ta.name};x`]) {
    await assert.rejects(driver.apply([{ ...spec(ta, 1, 1), name }]), PoolerConfigError);
  }
  const same = (d: { file: string }[]) => d.filter((f) => f.file !== 'pgbouncer.log' && f.file !== 'tenantry.owner');
  assert.deepEqual(same(await readDir(files.dir)), same(before));
  assert.deepEqual((await observedOwn()).map((p) => p.name), [ta.name, tc.name]);
});

/**
 * A second driver for the same PgBouncer whose renders break the last [databases] line once
 * `breaking` is set: PgBouncer 1.18 applies the lines before it, drops the rest, and still
 * answers RELOAD with success. It first applies what PgBouncer runs now, unbroken, so that is
 * its last good configuration (a driver keeps it in memory).
 */
async function breakingDriver() {
  class BreaksLastLine extends PgBouncerDriver {
    breaking = false;
    protected override renderIni(pools: readonly PoolSpec[], maxClientConn: number): string {
      const ini = super.renderIni(pools, maxClientConn);
      return this.breaking ? ini.replace(/(pool_size=\d+)(?![\s\S]*pool_size=)/, '$1 not_a_parameter=1') : ini;
    }
  }
  const broken = new BreaksLastLine({
    settings: proc.settings,
    admin: proc.admin,
    authUser: { user: roles.authUser, password: authPassword },
    clientSlots: { perConnection: 5, fileLimit: 20_000 },
    fileOwner: proc.fileOwner,
  });
  const goodPools = await observedOwn();
  const goodIni = await readFile(proc.settings.files.ini, 'utf8');
  await broken.apply(goodPools.map((p) => spec({ name: p.name }, p.poolSize!, p.maxDbConnections!, p.mode as PoolSpec['mode'])));
  assert.equal(await readFile(proc.settings.files.ini, 'utf8'), goodIni, 'the same pools render the same file');
  broken.breaking = true;
  return { broken, goodIni, goodPools };
}

test('a file PgBouncer only partly accepts is detected and rolled back', { skip }, async (t: TestContext) => {
  const { broken, goodIni, goodPools } = await breakingDriver();
  const { files } = proc.settings;

  await assert.rejects(broken.apply([spec(ta, 9, 9), spec(tc, 9, 9, 'session')]), (err: unknown) => {
    assert.ok(err instanceof PoolerConfigError);
    t.diagnostic(err.message);
    assert.match(err.message, /restored and reloaded/);
    return true;
  });
  assert.equal(await readFile(files.ini, 'utf8'), goodIni);
  assert.deepEqual(await observedOwn(), goodPools);
});

test('checked by PgBouncer\'s log (applies after a change): a file it only partly accepts is still detected and rolled back', { skip }, async () => {
  const { broken, goodIni, goodPools } = await breakingDriver();
  const { files } = proc.settings;
  await assert.rejects(broken.apply([spec(ta, 8, 8), spec(tc, 8, 8, 'session')], { verify: 'log' }), (err: unknown) => {
    assert.ok(err instanceof PoolerConfigError);
    assert.match(err.message, /restored and reloaded/);
    return true;
  });
  assert.equal(broken.lastVerified, 'show', 'the refusal in the log sent it to the full check');
  assert.equal(await readFile(files.ini, 'utf8'), goodIni);
  assert.deepEqual(await observedOwn(), goodPools);

  // A clean apply checked by the log alone: PgBouncer runs it, and it is the last good
  // configuration (the next refusal restores it).
  const pools = goodPools.map((p) => ({ ...spec({ name: p.name }, p.poolSize!, p.maxDbConnections!, p.mode as PoolSpec['mode']) }));
  pools[0]!.poolSize = 4;
  broken.breaking = false;
  await broken.apply(pools, { verify: 'log' });
  assert.equal(broken.lastVerified, 'log');
  assert.equal(byName(await observedOwn()).get(pools[0]!.name)?.poolSize, 4);
  const clean = await readFile(files.ini, 'utf8');
  broken.breaking = true;
  await assert.rejects(broken.apply([spec(ta, 8, 8), spec(tc, 8, 8, 'session')], { verify: 'log' }), PoolerConfigError);
  assert.equal(await readFile(files.ini, 'utf8'), clean, 'the clean apply was the one restored');
  assert.equal(byName(await observedOwn()).get(pools[0]!.name)?.poolSize, 4);
  await assert.rejects(stat(files.lastGoodIni), { code: 'ENOENT' }, 'kept in memory, not on disk');
});

test('the ini rendered apply after apply (changed lines only) equals the ini rendered from scratch', () => {
  const settings: PgBouncerSettings = {
    listenHost: '127.0.0.1', listenPort: 6432, serverHost: '127.0.0.1', serverPort: 5432, adminUser: 'adm', authUser: 'au',
    authQuery: AUTH_QUERY, serverIdleTimeout: 10, defaultPoolMode: 'transaction', files: pgBouncerFiles('/tmp/x'),
  };
  const p = (i: number, size = 5, port?: number): PoolSpec => ({ ...spec({ name: `t${i}` }, size, size), ...(port ? { serverHost: '10.0.0.2', serverPort: port } : {}) });
  const renderer = new IniRenderer();
  const steps: PoolSpec[][] = [
    [p(3), p(1), p(2)],
    [p(3), p(1, 7), p(2)], // resized
    [p(3), p(1, 7), p(2), p(0)], // added
    [p(3), p(2), p(0, 5, 6000)], // removed one, repointed one
    [p(3), p(2), p(0, 5, 6000)], // nothing changed
  ];
  for (const pools of steps) assert.equal(renderer.render(settings, pools, 100), renderPgBouncerIni(settings, pools, 100));
  assert.throws(() => renderer.render(settings, [p(1), p(1)], 100), /duplicate name/);
  assert.throws(() => renderer.render(settings, [p(1), { ...p(2), user: 'bad user' }], 100), /must match/);
  assert.equal(renderer.render(settings, steps[4]!, 100), renderPgBouncerIni(settings, steps[4]!, 100), 'a refused render changed nothing');
});

test('an ini that cannot be written: PoolerFilesError naming the file, with what PgBouncer still runs', { skip }, async () => {
  // Root (the tests' user) ignores mode bits: the immutable attribute gives a real EPERM.
  const asRoot = process.getuid?.() === 0;
  const { files } = proc.settings;
  const lock = (file: string) => (asRoot ? execFileSync('chattr', ['+i', file]) : chmodSync(files.dir, 0o500));
  const unlock = (file: string) => (asRoot ? execFileSync('chattr', ['-i', file]) : chmodSync(files.dir, 0o700));
  const runs = [spec(ta, 5, 7), spec(tc, 2, 2, 'session')];
  await driver.apply(runs);
  const before = await readFile(files.ini, 'utf8');

  lock(files.ini);
  try {
    await assert.rejects(driver.apply([spec(ta, 6, 6), spec(tc, 2, 2, 'session')]), (err: unknown) => {
      assert.ok(err instanceof PoolerFilesError);
      assert.equal(err.code, asRoot ? 'EPERM' : 'EACCES');
      assert.ok(err.message.startsWith(`${files.ini} cannot be written (${err.code}`), err.message);
      assert.doesNotMatch(err.message, /\.tmp/, 'no temporary file name: the reason is the same at every retry');
      assert.deepEqual(err.running?.filter((p) => p.name.startsWith(prefix)).map((p) => [p.name, p.poolSize]), [[ta.name, 5], [tc.name, 2]]);
      return true;
    });
  } finally {
    unlock(files.ini);
  }
  assert.equal(await readFile(files.ini, 'utf8'), before);
  assert.deepEqual((await observedOwn()).map((p) => [p.name, p.poolSize]), [[ta.name, 5], [tc.name, 2]]);
  assert.deepEqual((await readdir(files.dir)).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');

  await driver.apply(runs);
});

test('with the pooler down, apply writes the file and throws PoolerUnavailableError; a restart picks it up', { skip }, async () => {
  await proc.stop();
  const wanted = [spec(ta, 4, 8), spec(tb, 3, 3)];
  await assert.rejects(driver.apply(wanted), PoolerUnavailableError);
  const ini = await readFile(proc.settings.files.ini, 'utf8');
  assert.match(ini, new RegExp(`^${tb.name} = .* pool_size=3 max_db_connections=4 `, 'm'));
  await assert.rejects(driver.observe(), PoolerUnavailableError);

  await proc.start();
  assert.deepEqual((await observedOwn()).map((p) => [p.name, p.poolSize]), [[ta.name, 4], [tb.name, 3]]);
  await driver.apply(wanted);
  const client = await throughPooler(tb, tb.password);
  assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
  await release(client);
});

test('the admin console keeps one connection for short commands: one login for many, a new one after a restart, and a PgBouncer that stops answering is unavailable, not a hang', { skip }, async () => {
  const target = { ...driver.address, user: proc.admin.user, password: proc.admin.password, connectTimeoutMs: 1000, commandTimeoutMs: 1000 };
  const console = new AdminConsole({ ...target, hold: true });
  /** The admin console's sessions PgBouncer lists (addr:port), the asking one's own left out. */
  const adminSessions = async () => {
    const probe = new pg.Client({ ...driver.address, user: proc.admin.user, password: proc.admin.password, database: 'pgbouncer' });
    await probe.connect();
    try {
      const own = (probe as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
      const { rows } = await probe.query('SHOW CLIENTS');
      return new Set(rows.filter((r) => r.database === 'pgbouncer' && r.user === proc.admin.user && Number(r.port) !== own).map((r) => `${r.addr}:${r.port}`));
    } finally {
      await probe.end();
    }
  };
  const others = await adminSessions(); // e.g. the driver's own held connection
  const consoleSessions = async () => [...(await adminSessions())].filter((s) => !others.has(s));
  try {
    await console.reload();
    const [first, ...more] = await consoleSessions();
    assert.ok(first, 'the held connection is open between calls');
    assert.deepEqual(more, []);
    for (let i = 0; i < 5; i++) await console.reload();
    await console.showPools();
    assert.deepEqual(await consoleSessions(), [first], 'seven commands, one login');

    // PgBouncer restarted: the held connection is gone; the next command opens a new one.
    await proc.stop();
    await assert.rejects(console.reload(), PoolerUnavailableError);
    await proc.start();
    await console.reload();
    const [second, ...extra] = await adminSessions(); // the driver's was lost in the restart too
    assert.ok(second && second !== first, 'a new connection after the restart');
    assert.deepEqual(extra, []);

    // Stopped (SIGSTOP): neither the held connection nor a new one answers. Unavailable after
    // the command timeout, and the next command after it resumes works.
    const pid = proc.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      await assert.rejects(console.reload(), (err: Error) => err instanceof PoolerUnavailableError && /did not answer RELOAD within 1000 ms/.test(err.message));
      await assert.rejects(console.reload(), PoolerUnavailableError);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await console.reload();
  } finally {
    await console.close();
  }
  // Closed: later calls open a connection each, and none stays open.
  await console.ping();
  assert.deepEqual([...(await adminSessions())], [], 'no admin connection stays open');
});

test('the auth file holds only the admin console\'s user and the auth user, mode 0600; no tenant password is on disk', { skip }, async () => {
  const { files } = proc.settings;
  const secrets = [...tenants.map((t) => t.password), proc.admin.password];
  for (const { file, text } of await readDir(files.dir)) {
    for (const s of secrets) assert.ok(!text.includes(s), `${file} contains a password`);
  }
  const auth = await readFile(files.authFile, 'utf8');
  assert.deepEqual(auth.trim().split('\n').map((l) => l.split(' ')[0]), [`"${proc.admin.user}"`, `"${roles.authUser}"`]);
  assert.match(auth, new RegExp(`^"${proc.admin.user}" "SCRAM-SHA-256\\$`, 'm'));
  for (const t of tenants) assert.ok(!auth.includes(`"${t.name}"`), `${t.name} is in the auth file`);
  assert.equal((await stat(files.authFile)).mode & 0o777, 0o600);
});
