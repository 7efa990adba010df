// PgBouncerDriver against a real PostgreSQL (TEST_DATABASE_URL, a superuser) and a real
// PgBouncer started for this file. Everything it creates carries a random prefix and is
// removed at the end.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import format from 'pg-format';
import { describeServer } from '../src/db/connection-url.js';
import { generatePassword, scramSha256Verifier } from '../src/domain/tenants/credentials.js';
import { PoolerConfigError, PoolerUnavailableError, type ObservedPool, type PoolSpec } from '../src/domain/pools/pooler-driver.js';
import { poolSpecProblems } from '../src/domain/pools/pgbouncer/pgbouncer-config.js';
import { PgBouncerDriver } from '../src/domain/pools/pgbouncer/pgbouncer-driver.js';
import { findPgBouncer, PgBouncerProcess } from '../src/domain/pools/pgbouncer/pgbouncer-process.js';
import { freePort } from './support/free-port.js';

const superuserUrl = process.env.TEST_DATABASE_URL;
const binary = findPgBouncer();
// On CI a missing PgBouncer is a failure (before() throws); elsewhere the pooler tests skip.
const skip = binary || process.env.CI === 'true' ? false : 'pgbouncer is not installed (not on PATH, not in /usr/sbin); with CI=true this fails';

const prefix = `pgbt_${randomBytes(4).toString('hex')}_`;
const tenants = ['a', 'b', 'c'].map((k) => ({ name: prefix + k, password: generatePassword() }));
const [ta, tb, tc] = tenants as [(typeof tenants)[0], (typeof tenants)[0], (typeof tenants)[0]];

let superuser: pg.Pool;
let tmp: string;
let proc: PgBouncerProcess;
let driver: PgBouncerDriver;
const openClients = new Set<pg.Client>();

function spec(t: { name: string }, poolSize: number, maxDbConnections: number, mode: PoolSpec['mode'] = 'transaction'): PoolSpec {
  return { name: t.name, database: t.name, user: t.name, poolSize, maxDbConnections, mode };
}

const byName = (pools: ObservedPool[]) => new Map(pools.map((p) => [p.name, p]));

/** Only this file's pools: other files may not share the pooler, but be strict anyway. */
async function observedOwn(): Promise<ObservedPool[]> {
  return (await driver.observe()).filter((p) => p.name.startsWith(prefix)).sort((x, y) => x.name.localeCompare(y.name));
}

async function throughPooler(t: { name: string }, password: string): Promise<pg.Client> {
  const client = new pg.Client({ ...driver.address, user: t.name, password, database: t.name });
  client.on('error', () => undefined);
  openClients.add(client);
  await client.connect();
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
  Promise.all((await readdir(dir)).map(async (f) => ({ file: f, text: await readFile(path.join(dir, f), 'utf8') })));

before(async () => {
  if (skip) return;
  if (!superuserUrl) throw new Error('TEST_DATABASE_URL (a superuser URL) is required');
  if (!binary) throw new Error('CI=true and pgbouncer is not installed: install PgBouncer 1.14+');
  superuser = new pg.Pool({ connectionString: superuserUrl, max: 2 });
  superuser.on('error', () => undefined);
  for (const t of tenants) {
    await superuser.query(format('CREATE ROLE %I LOGIN CONNECTION LIMIT 10 PASSWORD %L', t.name, scramSha256Verifier(t.password)));
    await superuser.query(format('CREATE DATABASE %I OWNER %I TEMPLATE template0', t.name, t.name));
  }
  tmp = await mkdtemp(path.join(tmpdir(), 'pgbt-'));
  await chmod(tmp, 0o711); // PgBouncer runs as postgres when we are root: it must reach its folder
  const server = describeServer(superuserUrl);
  proc = new PgBouncerProcess({ dir: path.join(tmp, 'pgbouncer'), listenPort: await freePort(), serverHost: server.host, serverPort: server.port, binary });
  await proc.start();
  driver = new PgBouncerDriver({ settings: proc.settings, admin: proc.admin, fileOwner: proc.fileOwner, superuser });
});

after(async () => {
  if (skip) return;
  await Promise.all([...openClients].map(release));
  await driver?.close().catch(() => undefined);
  await proc?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
  if (superuser) {
    for (const t of tenants) {
      await superuser.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', t.name)).catch(() => undefined);
      await superuser.query(format('DROP ROLE IF EXISTS %I', t.name)).catch(() => undefined);
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

test('apply two pools: SHOW DATABASES lists them with their sizes', { skip }, async () => {
  await driver.apply([spec(ta, 3, 4), spec(tb, 2, 6, 'session')]);
  assert.deepEqual(await observedOwn(), [
    { name: ta.name, database: ta.name, poolSize: 3, maxDbConnections: 4, mode: 'transaction' },
    { name: tb.name, database: tb.name, poolSize: 2, maxDbConnections: 6, mode: 'session' },
  ]);
});

test('a tenant connects through PgBouncer with its own password', { skip }, async (t: TestContext) => {
  const client = await throughPooler(ta, ta.password);
  const { rows } = await client.query<{ who: string; db: string }>('SELECT current_user AS who, current_database() AS db');
  assert.deepEqual(rows[0], { who: ta.name, db: ta.name });
  await release(client);

  await assert.rejects(throughPooler(ta, 'not-the-password'), /password authentication failed|SASL/);

  // Pass-through is only exercised when the server itself asks for a password.
  const direct = new pg.Client({ ...describeServer(superuserUrl!), user: ta.name, password: 'not-the-password', database: ta.name });
  const serverTrusts = await direct.connect().then(() => true, () => false);
  await direct.end().catch(() => undefined);
  t.diagnostic(serverTrusts ? 'server trusts this login: SCRAM pass-through NOT exercised' : 'server demands a password: SCRAM pass-through exercised');
});

test('a resized pool is visible after apply', { skip }, async () => {
  await driver.apply([spec(ta, 5, 7), spec(tb, 2, 6, 'session')]);
  const a = byName(await observedOwn()).get(ta.name);
  assert.equal(a?.poolSize, 5);
  assert.equal(a?.maxDbConnections, 7);
});

test('at max_db_connections a third session client waits, and stats() shows it', { skip }, async () => {
  await driver.apply([spec(ta, 5, 7), spec(tb, 2, 6, 'session'), spec(tc, 5, 2, 'session')]);
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
  await driver.apply([spec(ta, 5, 7), spec(tc, 5, 2, 'session')]);
  assert.deepEqual((await observedOwn()).map((p) => p.name), [ta.name, tc.name]);
  // Its role left the auth file with it, so PgBouncer refuses the login itself.
  assert.doesNotMatch(await readFile(proc.settings.files.authFile, 'utf8'), new RegExp(`"${tb.name}"`));
  await assert.rejects(throughPooler(tb, tb.password), /SASL authentication failed|password authentication failed|no such database/);
});

test('an invalid spec is refused and nothing is written', { skip }, async () => {
  const { files } = proc.settings;
  const before = await readDir(files.dir);
  for (const name of [`${ta.name}\nevil = host=1.2.3.4`, `${ta.name};x`]) {
    await assert.rejects(driver.apply([{ ...spec(ta, 1, 1), name }]), PoolerConfigError);
  }
  await assert.rejects(driver.apply([spec({ name: `${prefix}nobody` }, 1, 1)]), PoolerConfigError); // unknown role
  assert.deepEqual(await readDir(files.dir).then((d) => d.filter((f) => f.file !== 'pgbouncer.log')), before.filter((f) => f.file !== 'pgbouncer.log'));
  assert.deepEqual((await observedOwn()).map((p) => p.name), [ta.name, tc.name]);
});

test('a file PgBouncer only partly accepts is detected and rolled back', { skip }, async (t: TestContext) => {
  // Breaks the last [databases] line: PgBouncer 1.18 applies the lines before it, drops the
  // rest, and still answers RELOAD with success.
  class BreaksLastLine extends PgBouncerDriver {
    protected override renderIni(pools: readonly PoolSpec[]): string {
      return super.renderIni(pools).replace(/(pool_size=\d+)(?![\s\S]*pool_size=)/, '$1 not_a_parameter=1');
    }
  }
  const broken = new BreaksLastLine({ settings: proc.settings, admin: proc.admin, fileOwner: proc.fileOwner, superuser });
  const { files } = proc.settings;
  const goodIni = await readFile(files.ini, 'utf8');
  const goodPools = await observedOwn();

  await assert.rejects(broken.apply([spec(ta, 9, 9), spec(tc, 9, 9, 'session')]), (err: unknown) => {
    assert.ok(err instanceof PoolerConfigError);
    t.diagnostic(err.message);
    assert.match(err.message, /restored and reloaded/);
    return true;
  });
  assert.equal(await readFile(files.ini, 'utf8'), goodIni);
  assert.deepEqual(await observedOwn(), goodPools);
});

test('with the pooler down, apply writes the file and throws PoolerUnavailableError; a restart picks it up', { skip }, async () => {
  await proc.stop();
  const wanted = [spec(ta, 4, 8), spec(tb, 3, 3)];
  await assert.rejects(driver.apply(wanted), PoolerUnavailableError);
  const ini = await readFile(proc.settings.files.ini, 'utf8');
  assert.match(ini, new RegExp(`^${tb.name} = .* pool_size=3 max_db_connections=3 `, 'm'));
  await assert.rejects(driver.observe(), PoolerUnavailableError);

  await proc.start();
  assert.deepEqual((await observedOwn()).map((p) => [p.name, p.poolSize]), [[ta.name, 4], [tb.name, 3]]);
  await driver.apply(wanted);
  const client = await throughPooler(tb, tb.password);
  assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
  await release(client);
});

test('no plaintext password is on disk; the auth file holds SCRAM verifiers, mode 0600', { skip }, async () => {
  const { files } = proc.settings;
  const secrets = [...tenants.map((t) => t.password), proc.admin.password];
  for (const { file, text } of await readDir(files.dir)) {
    for (const s of secrets) assert.ok(!text.includes(s), `${file} contains a password`);
  }
  const auth = await readFile(files.authFile, 'utf8');
  assert.match(auth, new RegExp(`^"${ta.name}" "SCRAM-SHA-256\\$4096:[^"]+"$`, 'm'));
  assert.match(auth, new RegExp(`^"${proc.admin.user}" "SCRAM-SHA-256\\$`, 'm'));
  assert.equal((await stat(files.authFile)).mode & 0o777, 0o600);
});
