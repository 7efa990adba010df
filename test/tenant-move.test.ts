// @test-scope once (its control database and clusters are private PostgreSQL servers, whatever the run's server)
// Issue 17, moving a tenant: ONLINE (logical replication) and OFFLINE (dump | restore) between two
// private PostgreSQL 15 clusters. The source is the server that holds the control database (the
// default cluster, where provisioning puts tenants); the target is a second cluster registered
// by its URL's environment variable. POOLER=none here: pause/repoint/resume are no-ops, and the
// "pause" is the time the tenant's logins were refused.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { localIdOf } from '../src/graphql/ids.js';
import { moveObjectName, tableSyncSlotPattern } from '../src/modules/moves/index.js';
import { onDatabase, startPrivateCluster, type PrivateCluster } from './support/private-cluster.js';
import { connectAs, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';
import { subscribeWs, until, wsClient } from './support/subscriptions.js';

const MOVE_TEST_BYTES = Number(process.env.MOVE_TEST_BYTES ?? 32 * 1024 * 1024);

let a: PrivateCluster;
let b: PrivateCluster;
let t: TestTenantry;
let targetId: string;
let sourceId: string;
const envVar = `TENANTRY_MOVE_TEST_B_${process.pid}`;
let holdCutoverMs = 0;
/** While set, a move waits after its initial copy (the tenant is RUNNING a move, its lock free). */
let holdAfterCopy: Promise<void> | null = null;
/** Run between a move's commit and its start (the OFFLINE test runs a recovery pass there). */
let onMoveStarted: (() => Promise<void>) | null = null;
/** Run once a move's subscription exists, before the initial copy is watched. */
let onSubscribed: (() => Promise<void>) | null = null;
/** Run once the cutover's commit answered. */
let onCommitted: (() => void) | null = null;

before(async () => {
  [a, b] = await Promise.all([startPrivateCluster({ version: 15 }), startPrivateCluster({ version: 15 })]);
  process.env[envVar] = b.url;
  t = await startTestTenantry({
    serverUrl: a.url,
    env: { OPERATION_RESUME_INTERVAL_MS: '600000' },
    // The cutover-timeout test holds the wait for the last change past the move's timeout.
    failpoints: {
      'move.cutover:wait': () => new Promise((r) => setTimeout(r, holdCutoverMs)),
      'move.after:INITIAL_COPY': () => holdAfterCopy ?? undefined,
      'move.started': () => onMoveStarted?.(),
      'move.after:SUBSCRIPTION': () => onSubscribed?.(),
      'move.cutover:committed': () => onCommitted?.(),
    },
  });
  targetId = randomUUID();
  sourceId = await control(async (c) => (await c.query(`SELECT id::text FROM clusters WHERE name = 'default'`)).rows[0].id);
  await control((c) => c.query(`INSERT INTO clusters (id, name, connection_url_env, status, updated_at) VALUES ($1, 'target-b', $2, 'ACTIVE', now())`, [targetId, envVar]));
});

after(async () => {
  await t?.stop();
  await Promise.all([a?.remove(), b?.remove()]);
  delete process.env[envVar];
});

async function control<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  return on(a.url, t.controlDatabase, fn);
}

const on = onDatabase;

const MOVE = `mutation Move($input: MoveTenantInput!) {
  moveTenant(input: $input) { move { id status step warnings } warnings userErrors { code field message } }
}`;
const MOVE_STATE = `query Move($id: ID!) { node(id: $id) { ... on TenantMove { status step error pauseMs sequencesCopied tablesTotal tablesCopied bytesCopied
  rowCounts { table rows } retainedDatabase retainedUntil replicaIdentityFull warnings tenant { slug } } } }`;

/** A tenant on the source, with `statements` run in its database as the tenant. */
async function provision(slug: string, ...statements: string[]) {
  const r = (await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 10, placement: { clusterId: sourceId } } })).data.provisionTenant;
  assert.deepEqual(r.userErrors, []);
  if (statements.length) {
    const tenant = await connectAs(r.connectionString);
    for (const statement of statements) await tenant.query(statement);
    await tenant.end();
  }
  return r as { connectionString: string; tenant: { id: string; databaseName: string; roleName: string } };
}

async function move(input: Record<string, unknown>) {
  const r = await t.gql(MOVE, { input });
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  return r.data.moveTenant;
}

/** The UUID in a TenantMove's global id. */
const localId = (id: string) => localIdOf(id, 'TenantMove')!;

async function moveState(moveId: string) {
  const r = await t.gql(MOVE_STATE, { id: moveId });
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  return r.data.node;
}

async function finished(moveId: string) {
  await t.app.parts.moves.settled(localId(moveId));
  return until(() => moveState(moveId), (m) => m.status !== 'RUNNING', 'the move to finish', 180_000);
}

/** The same connection string, on the target's port. */
function onTarget(connectionString: string): string {
  const u = new URL(connectionString);
  u.port = String(b.port);
  return u.toString();
}

async function loginRoles(url: string, role: string): Promise<boolean | null> {
  return on(url, 'postgres', async (c) => (await c.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [role])).rows[0]?.rolcanlogin ?? null);
}

async function leftovers(url: string, databases: string[]): Promise<string[]> {
  const out: string[] = [];
  await on(url, 'postgres', async (c) => {
    for (const r of (await c.query(`SELECT slot_name AS n FROM pg_replication_slots`)).rows) out.push(`slot ${r.n}`);
  });
  for (const db of databases) {
    await on(url, db, async (c) => {
      for (const r of (await c.query(`SELECT subname AS n FROM pg_subscription`)).rows) out.push(`subscription ${r.n}`);
      for (const r of (await c.query(`SELECT pubname AS n FROM pg_publication`)).rows) out.push(`publication ${r.n}`);
      for (const r of (await c.query(`SELECT roname AS n FROM pg_replication_origin`)).rows) out.push(`origin ${r.n}`);
    }).catch((err: Error) => out.push(`cannot open ${db}: ${err.message}`));
  }
  return out;
}

/** After a move that failed: the tenant serves from the source with `rows` rows in t, has no role on the target, and nothing of the move is left on either server. */
async function assertBackOnSource(p: { connectionString: string; tenant: { databaseName: string; roleName: string } }, rows: number): Promise<void> {
  const again = await connectAs(p.connectionString);
  assert.equal(Number((await again.query('SELECT count(*) AS n FROM t')).rows[0].n), rows);
  await again.end();
  assert.equal(await loginRoles(b.url, p.tenant.roleName), null);
  assert.deepEqual(await leftovers(a.url, [p.tenant.databaseName]), []);
  assert.deepEqual(await leftovers(b.url, []), []);
}

/** An md5 over every row (in key order) of each of the tenant's tables. */
async function checksums(url: string, db: string): Promise<Record<string, string>> {
  return on(url, db, async (c) => {
    const out: Record<string, string> = {};
    for (const r of (await c.query(`SELECT schemaname AS s, tablename AS n FROM pg_tables WHERE schemaname = 'public' ORDER BY 1, 2`)).rows) {
      const q = `SELECT md5(coalesce(string_agg(md5(x::text), '' ORDER BY md5(x::text)), '')) AS h FROM "${r.s}"."${r.n}" x`;
      out[`${r.s}.${r.n}`] = (await c.query(q)).rows[0].h;
    }
    return out;
  });
}

describe('moveTenant between two PostgreSQL 15 clusters', () => {
  test('ONLINE under writes: counts and checksums equal, sequences carried, same password works on the target, nothing of the move left', async () => {
    const p = await provision('mv-online');
    const tenant = await connectAs(p.connectionString);
    await tenant.query(`CREATE TABLE items (id bigserial PRIMARY KEY, body text NOT NULL, at timestamptz NOT NULL DEFAULT now())`);
    await tenant.query(`CREATE INDEX items_at ON items (at)`);
    await tenant.query(`CREATE TABLE notes (k int, v text)`); // no key: needs setReplicaIdentityFull
    await tenant.query(`CREATE SEQUENCE counter START 100`);
    await tenant.query(`SELECT nextval('counter') FROM generate_series(1, 5)`);
    const rows = Math.max(1000, Math.round(MOVE_TEST_BYTES / 1100));
    await tenant.query(`INSERT INTO items (body) SELECT repeat(md5(g::text), 32) FROM generate_series(1, $1) g`, [rows]);
    await tenant.query(`INSERT INTO notes SELECT g, 'n' || g FROM generate_series(1, 100) g`);
    await tenant.end();

    // Without setReplicaIdentityFull the keyless table stops the move, and nothing is made on the target.
    const refused = await move({ slug: 'mv-online', targetClusterId: targetId, mode: 'ONLINE' });
    assert.equal(refused.userErrors[0]?.code, 'MOVE_PREFLIGHT_FAILED');
    assert.match(refused.userErrors[0].message, /public\.notes/);
    assert.equal(await on(b.url, 'postgres', async (c) => (await c.query('SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [p.tenant.databaseName])).rows[0].n), 0);

    // A steady writer, reconnecting when refused: every insert that succeeded must be on the target.
    let stop = false;
    let ok = 0;
    let failed = 0;
    const writer = (async () => {
      let c: pg.Client | null = null;
      while (!stop) {
        try {
          c ??= await connectAs(p.connectionString);
          await c.query(`INSERT INTO items (body) VALUES ('live')`);
          ok++;
        } catch {
          failed++;
          await c?.end().catch(() => undefined);
          c = null;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      await c?.end().catch(() => undefined);
    })();

    const started = Date.now();
    const r = await move({ slug: 'mv-online', targetClusterId: targetId, mode: 'ONLINE', setReplicaIdentityFull: true, retainSourceHours: 1 });
    assert.deepEqual(r.userErrors, []);
    assert.equal(r.move.status, 'RUNNING');
    const m = await finished(r.move.id);
    stop = true;
    await writer;
    console.log(`# ONLINE move of ${rows} rows (${Math.round(MOVE_TEST_BYTES / 1048576)} MB asked): ${Date.now() - started} ms, pause ${m.pauseMs} ms, ${ok} writes ok, ${failed} refused during the cutover`);
    assert.equal(m.status, 'SUCCEEDED', m.error);
    console.log(`# cutover phases (ms): ${JSON.stringify((await control((c) => c.query('SELECT progress FROM tenant_moves WHERE id = $1', [localId(r.move.id)]))).rows[0].progress.cutoverPhases)}`);
    assert.equal(m.step, 'CLEANUP');
    assert.deepEqual(m.replicaIdentityFull, ['public.notes']);
    assert.equal(typeof m.pauseMs, 'number');
    assert.ok(m.sequencesCopied >= 2, `sequences copied: ${m.sequencesCopied}`);
    assert.ok(m.rowCounts.find((x: any) => x.table === 'public.items').rows >= rows + ok);

    // The tenant lives on the target now, with the same password.
    const cluster = await control(async (c) => (await c.query('SELECT cluster_id::text AS id FROM tenants WHERE slug = $1', ['mv-online'])).rows[0].id);
    assert.equal(cluster, targetId);
    const moved = await connectAs(onTarget(p.connectionString));
    const count = Number((await moved.query('SELECT count(*) AS n FROM items')).rows[0].n);
    assert.equal(count, rows + ok, 'every acknowledged write is on the target');
    // A sequence-backed insert right after the move does not collide.
    await moved.query(`INSERT INTO items (body) VALUES ('after the move')`);
    assert.ok(Number((await moved.query(`SELECT nextval('counter') AS v`)).rows[0].v) >= 105);
    await moved.end();
    // The source refuses the tenant's login; the source database is kept under another name, closed.
    assert.equal(await loginRoles(a.url, p.tenant.roleName), false);
    assert.equal(await loginRoles(b.url, p.tenant.roleName), true);
    assert.equal(m.retainedDatabase, `${p.tenant.databaseName}_moved_${localId(r.move.id).replace(/-/g, '').slice(-12)}`);
    // Checksums: the retained source against the target (minus the row added after the move).
    await on(a.url, 'postgres', (c) => c.query(`ALTER DATABASE "${m.retainedDatabase}" WITH ALLOW_CONNECTIONS true`));
    await on(b.url, p.tenant.databaseName, (c) => c.query(`DELETE FROM items WHERE body = 'after the move'`));
    assert.deepEqual(await checksums(b.url, p.tenant.databaseName), await checksums(a.url, m.retainedDatabase));
    assert.deepEqual(await leftovers(a.url, [m.retainedDatabase]), []);
    await on(a.url, 'postgres', (c) => c.query(`ALTER DATABASE "${m.retainedDatabase}" WITH ALLOW_CONNECTIONS false`));
    assert.deepEqual(await leftovers(b.url, [p.tenant.databaseName]), []);

    // Past its retention the source database and roles are dropped.
    await control((c) => c.query(`UPDATE tenant_moves SET retained_until = now() WHERE id = $1`, [localId(r.move.id)]));
    await t.app.parts.moves.dropExpiredRetained();
    assert.equal(await loginRoles(a.url, p.tenant.roleName), null);
    assert.equal(await on(a.url, 'postgres', async (c) => (await c.query('SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [m.retainedDatabase])).rows[0].n), 0);

    // Other changes were refused while it ran; audit has every phase.
    const actions = await control(async (c) => (await c.query(`SELECT action FROM audit_events WHERE category = 'move' AND subject = $1 ORDER BY id`, [localId(r.move.id)])).rows.map((x) => x.action));
    for (const a of ['move.started', 'move.copied', 'move.cutover', 'move.committed', 'move.finished']) assert.ok(actions.includes(a), `${a} in ${actions}`);
  });

  test('table copies in progress do not count against an ONLINE move\'s replication budget; lasting holders do', async () => {
    // A drain moving four tenants at once was refused its fifth: the other moves' table copies
    // (a slot and a WAL sender on the source, a worker on the target each, given back when their
    // table is copied) were counted as taken. A keyless table stops this tenant's move in the
    // preflight, so the preflight's list of problems is all this test looks at.
    const p = await provision('mv-budget', 'CREATE TABLE keyless (k int)');
    const budget = /replication slots|WAL senders|replication workers/;
    const problems = async () => {
      const refused = await move({ slug: 'mv-budget', targetClusterId: targetId, mode: 'ONLINE' });
      assert.equal(refused.userErrors[0]?.code, 'MOVE_PREFLIGHT_FAILED');
      assert.match(refused.userErrors[0].message, /public\.keyless/);
      return refused.userErrors[0].message as string;
    };
    const copies = Array.from({ length: 18 }, (_, i) => `pg_${16400 + i}_sync_${16500 + i}_7400000000000000000`);
    const senders: pg.Client[] = [];
    try {
      // On the source: 18 of 20 slots and 18 of 20 WAL senders held by table copies.
      await on(a.url, 'postgres', (c) => c.query('SELECT pg_catalog.pg_create_physical_replication_slot(n) FROM unnest($1::text[]) n', [copies]));
      for (const name of copies) {
        const c = new pg.Client({ connectionString: a.url, replication: 'database', application_name: name } as pg.ClientConfig);
        await c.connect();
        senders.push(c);
      }
      // On the target: 7 of 8 workers' subscriptions, disabled (they hold no worker).
      await on(b.url, 'postgres', async (c) => {
        for (let i = 0; i < 7; i++) {
          await c.query(`CREATE SUBSCRIPTION budget_${i} CONNECTION 'host=127.0.0.1 port=1 dbname=none' PUBLICATION none WITH (connect = false)`);
        }
      });
      const seen = await on(a.url, 'postgres', async (c) => (await c.query(`SELECT count(*)::int AS slots, (SELECT count(*)::int FROM pg_stat_replication) AS senders FROM pg_replication_slots`)).rows[0]);
      assert.deepEqual(seen, { slots: 18, senders: 18 });
      assert.doesNotMatch(await problems(), budget);

      // Lasting holders: 18 ordinary slots on the source, and the 7 subscriptions enabled (each an
      // apply worker's claim, whether or not it could connect yet).
      await on(a.url, 'postgres', (c) => c.query('SELECT pg_catalog.pg_drop_replication_slot(n) FROM unnest($1::text[]) n', [copies]));
      await on(a.url, 'postgres', (c) => c.query(`SELECT pg_catalog.pg_create_physical_replication_slot('budget_' || g) FROM generate_series(1, 18) g`));
      await on(b.url, 'postgres', async (c) => {
        for (let i = 0; i < 7; i++) await c.query(`ALTER SUBSCRIPTION budget_${i} SET (slot_name = 'budget_${i}')`);
        for (let i = 0; i < 7; i++) await c.query(`ALTER SUBSCRIPTION budget_${i} ENABLE`);
      });
      const message = await problems();
      assert.match(message, /the source has 2 free replication slots of 20; an ONLINE move needs 3/);
      assert.match(message, /the target has 1 free logical replication workers of 8; an ONLINE move needs 2/);
    } finally {
      await Promise.all(senders.map((c) => c.end().catch(() => undefined)));
      await on(b.url, 'postgres', async (c) => {
        for (let i = 0; i < 7; i++) {
          await c.query(`ALTER SUBSCRIPTION budget_${i} DISABLE`).catch(() => undefined);
          await c.query(`ALTER SUBSCRIPTION budget_${i} SET (slot_name = NONE)`).catch(() => undefined);
          await c.query(`DROP SUBSCRIPTION IF EXISTS budget_${i}`);
        }
      });
      await on(a.url, 'postgres', (c) => c.query(`SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'budget\\_%' OR slot_name LIKE 'pg\\_%\\_sync\\_%'`));
    }
    const gone = await t.gql(`mutation { deprovisionTenant(input: { slug: "mv-budget", confirm: "mv-budget" }) { userErrors { code message } } }`);
    assert.equal(gone.errors, undefined, JSON.stringify(gone.errors));
  });

  test('a cutover past its timeout is undone: the tenant serves from its source, no write lost, nothing left on the target', async () => {
    const p = await provision(
      'mv-timeout',
      `CREATE TABLE t (id serial PRIMARY KEY, v int)`,
      `INSERT INTO t (v) SELECT g FROM generate_series(1, 500) g`,
    );
    holdCutoverMs = 1500;
    try {
      const r = await move({ slug: 'mv-timeout', targetClusterId: targetId, mode: 'ONLINE', cutoverTimeoutSeconds: 1 });
      assert.deepEqual(r.userErrors, []);
      const m = await finished(r.move.id);
      assert.equal(m.status, 'ROLLED_BACK');
      assert.match(m.error, /longer than 1 s/);
    } finally {
      holdCutoverMs = 0;
    }
    const again = await connectAs(p.connectionString);
    await again.query(`INSERT INTO t (v) VALUES (501)`);
    assert.equal(Number((await again.query('SELECT count(*) AS n FROM t')).rows[0].n), 501);
    await again.end();
    assert.equal(await loginRoles(a.url, p.tenant.roleName), true);
    assert.equal(await loginRoles(b.url, p.tenant.roleName), null);
    assert.deepEqual(await leftovers(a.url, [p.tenant.databaseName]), []);
    assert.deepEqual(await leftovers(b.url, []), []);
  });

  test('moves started in the same millisecond (a drain starts several) name their replication objects apart', () => {
    // A slot name is unique per server: two moves sharing one took each other's slot (seen in a drain).
    const msecs = Date.now();
    const [one, two] = [uuidv7({ msecs }), uuidv7({ msecs })];
    assert.equal(one.slice(0, 13), two.slice(0, 13), 'a UUIDv7 begins with its millisecond');
    assert.notEqual(moveObjectName(one), moveObjectName(two));
    assert.ok(moveObjectName(one).length <= 63, 'within an identifier');
    // Table-sync slots are named by the subscription's oid, which another target server can
    // repeat: the subscriber's system identifier tells them apart.
    const mine = new RegExp(tableSyncSlotPattern(16402, '7441030927148917330'));
    assert.ok(mine.test('pg_16402_sync_16385_7441030927148917330'));
    assert.ok(!mine.test('pg_16402_sync_16385_7441030927148917999'), 'another target\'s subscription of the same oid');
    assert.ok(!mine.test('pg_164021_sync_16385_7441030927148917330'));
  });

  test('a move whose slot is gone from the source fails at the copy instead of waiting for it, and leaves nothing behind', async () => {
    const p = await provision(
      'mv-slot-gone',
      `CREATE TABLE t (id serial PRIMARY KEY, v int)`,
      `INSERT INTO t (v) SELECT g FROM generate_series(1, 100) g`,
    );
    // Taken from under the move: its walsender ended, then the slot dropped (the apply worker
    // cannot start again, so the tables would never turn ready).
    onSubscribed = () =>
      until(
        () =>
          on(a.url, 'postgres', async (c) => {
            await c.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE 'tenantry_move_%' AND active_pid IS NOT NULL`);
            return (await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'tenantry_move_%'`)).rowCount;
          }).catch(() => -1),
        (dropped) => dropped === 1,
        'the move\'s slot to be dropped',
      ).then(() => undefined);
    try {
      const r = await move({ slug: 'mv-slot-gone', targetClusterId: targetId, mode: 'ONLINE' });
      assert.deepEqual(r.userErrors, []);
      const m = await finished(r.move.id);
      assert.equal(m.status, 'FAILED');
      assert.match(m.error, /replication slot tenantry_move_\w+ is gone from the source/);
    } finally {
      onSubscribed = null;
    }
    await assertBackOnSource(p, 100);
  });

  test('a target that goes down during the copy: the move is undone once it is back, with the real reason; the tenant keeps serving from its source', async () => {
    const p = await provision(
      'mv-target-down',
      `CREATE TABLE t (id serial PRIMARY KEY, v int)`,
      `INSERT INTO t (v) SELECT g FROM generate_series(1, 100) g`,
    );
    onSubscribed = () => b.stop();
    let r: any;
    try {
      r = await move({ slug: 'mv-target-down', targetClusterId: targetId, mode: 'ONLINE', retainSourceHours: 0 });
      assert.deepEqual(r.userErrors, []);
      await t.app.parts.moves.settled(localId(r.move.id));
      // The copy could not reach the target, nor could the rollback: RUNNING, saying why.
      const stuck = await moveState(r.move.id);
      assert.equal(stuck.status, 'RUNNING');
      assert.match(stuck.error, /ECONNREFUSED|connect/);
      assert.match(stuck.error, /being rolled back: .*recovery tries again/);
      // Meanwhile the tenant serves from its source, writes included.
      const tenant = await connectAs(p.connectionString);
      await tenant.query('INSERT INTO t (v) VALUES (101)');
      await tenant.end();
      // A recovery pass while it is still down changes nothing.
      await t.app.parts.moves.recover();
      assert.equal((await moveState(r.move.id)).status, 'RUNNING');
    } finally {
      onSubscribed = null;
      await b.start();
    }
    await t.app.parts.moves.recover();
    const m = await finished(r.move.id);
    assert.equal(m.status, 'FAILED', 'the outcome of the failure, not "the server running the move stopped"');
    assert.match(m.error, /ECONNREFUSED|connect/);
    assert.doesNotMatch(m.error, /being rolled back|server running the move stopped/);
    await assertBackOnSource(p, 101);
    assert.equal(await on(b.url, 'postgres', async (c) => (await c.query('SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [p.tenant.databaseName])).rows[0].n), 0);
  });

  test('a cutover whose commit answers with a connection error keeps the source closed, reads the commit back, and finishes the move', async () => {
    const p = await provision(
      'mv-lost-answer',
      `CREATE TABLE t (id serial PRIMARY KEY, v int)`,
      `INSERT INTO t (v) SELECT g FROM generate_series(1, 100) g`,
    );
    // The commit happened; its answer is lost as a dropped session loses it.
    onCommitted = () => {
      onCommitted = null;
      throw new Error('Connection terminated unexpectedly');
    };
    try {
      const r = await move({ slug: 'mv-lost-answer', targetClusterId: targetId, mode: 'ONLINE', retainSourceHours: 1 });
      assert.deepEqual(r.userErrors, []);
      await t.app.parts.moves.settled(localId(r.move.id));
      // Finished by the same run (not left for recovery), and the source never reopened: a write
      // there would have been left behind in the retained copy.
      const m = await moveState(r.move.id);
      assert.equal(m.status, 'SUCCEEDED', m.error);
      assert.equal(await loginRoles(a.url, p.tenant.roleName), false, 'the source role was never given its login back');
      assert.equal(await loginRoles(b.url, p.tenant.roleName), true);
    } finally {
      onCommitted = null;
    }
    const moved = await connectAs(onTarget(p.connectionString));
    await moved.query('INSERT INTO t (v) VALUES (101)');
    assert.equal(Number((await moved.query('SELECT count(*) AS n FROM t')).rows[0].n), 101);
    await moved.end();
  });

  test('a move\'s cleanup drops its own table-sync slots only, not those another target\'s subscription of the same oid holds', async () => {
    const p = await provision('mv-sync-slots', `CREATE TABLE t (id serial PRIMARY KEY)`);
    // Another target server (a drain moves to several) whose subscription got the same oid is
    // copying a table from this source: its slot ends with that server's system identifier.
    let other = '';
    onSubscribed = async () => {
      const oid = await on(b.url, p.tenant.databaseName, async (c) => (await c.query(`SELECT oid::int AS oid FROM pg_subscription`)).rows[0].oid as number);
      other = `pg_${oid}_sync_16385_1`;
      await on(a.url, 'postgres', (c) => c.query('SELECT pg_create_physical_replication_slot($1)', [other]));
    };
    try {
      const r = await move({ slug: 'mv-sync-slots', targetClusterId: targetId, mode: 'ONLINE', retainSourceHours: 0 });
      assert.deepEqual(r.userErrors, []);
      const m = await finished(r.move.id);
      assert.equal(m.status, 'SUCCEEDED', m.error);
      assert.ok(other);
      const slots = await on(a.url, 'postgres', async (c) => (await c.query(`SELECT slot_name AS n FROM pg_replication_slots`)).rows.map((x) => x.n as string));
      assert.deepEqual(slots, [other]);
    } finally {
      onSubscribed = null;
      if (other) await on(a.url, 'postgres', (c) => c.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [other]));
    }
  });

  test('while a move runs, other changes to the tenant are TENANT_BUSY (deprovisioning included)', async () => {
    const p = await provision('mv-busy', `CREATE TABLE t (id serial PRIMARY KEY, v int)`);
    let release!: () => void;
    holdAfterCopy = new Promise((r) => (release = r));
    try {
      const r = await move({ slug: 'mv-busy', targetClusterId: targetId, mode: 'ONLINE', retainSourceHours: 0 });
      assert.deepEqual(r.userErrors, []);
      await until(async () => (await t.gql(MOVE_STATE, { id: r.move.id })).data.node.step, (step) => step === 'SUBSCRIPTION', 'the move to be copying (it holds after the copy)');
      const quota = await t.gql(`mutation { updateTenantQuota(input: { slug: "mv-busy", maxConnections: 12 }) { userErrors { code message } } }`);
      assert.equal(quota.data.updateTenantQuota.userErrors[0]?.code, 'TENANT_BUSY');
      const gone = await t.gql(`mutation { deprovisionTenant(input: { slug: "mv-busy", confirm: "mv-busy" }) { userErrors { code message } } }`);
      assert.equal(gone.data.deprovisionTenant.userErrors[0]?.code, 'TENANT_BUSY');
      assert.match(gone.data.deprovisionTenant.userErrors[0].message, /moving to another cluster/);
      release();
      const m = await finished(r.move.id);
      assert.equal(m.status, 'SUCCEEDED', m.error);
    } finally {
      holdAfterCopy = null;
      release?.();
    }
    // Once moved, the same calls work, on the tenant's new cluster.
    const after = await t.gql(`mutation { deprovisionTenant(input: { slug: "mv-busy", confirm: "mv-busy" }) { tenant { status } userErrors { code message } } }`);
    assert.deepEqual(after.data.deprovisionTenant.userErrors, []);
    assert.equal(await loginRoles(b.url, p.tenant.roleName), null, 'dropped on the cluster it moved to');
  });

  test('tenantMove streams a move: its state at once, each step in order with its figures, its end; then the stream ends; a tenant\'s key sees its own moves only', async () => {
    const p = await provision(
      'mv-watched',
      `CREATE TABLE t (id serial PRIMARY KEY, v int)`,
      `INSERT INTO t (v) SELECT g FROM generate_series(1, 2000) g`,
    );
    const WATCH = `subscription($id: ID!) { tenantMove(id: $id) { status step tablesTotal tablesCopied pauseMs } }`;
    type Seen = { status: string; step: string; tablesTotal: number | null; tablesCopied: number | null; pauseMs: number | null };
    let release!: () => void;
    holdAfterCopy = new Promise((r) => (release = r));
    const client = wsClient(t.url, t.adminKey);
    try {
      const r = await move({ slug: 'mv-watched', targetClusterId: targetId, mode: 'ONLINE', retainSourceHours: 0 });
      assert.deepEqual(r.userErrors, []);
      // Held after its copy: the stream's first value is the move as it stands, RUNNING.
      await until(async () => (await moveState(r.move.id)).step, (step) => step === 'SUBSCRIPTION', 'the move to hold after its copy');
      const sub = subscribeWs(client, WATCH, { id: r.move.id }, (d) => d.tenantMove as Seen);
      await until(() => sub.values.length, (n) => n >= 1, 'the first value');
      assert.deepEqual({ ...sub.values[0], tablesTotal: undefined, tablesCopied: undefined }, { status: 'RUNNING', step: 'SUBSCRIPTION', tablesTotal: undefined, tablesCopied: undefined, pauseMs: null });
      release();
      await until(() => sub.done, (done) => done, 'the stream to end with the move', 120_000);
      assert.deepEqual(sub.errors, []);
      // Each value is the row as it is when read: steps recorded in quick succession may be seen
      // as their last; those seen are in order, from where it stood to its end.
      const order = ['SUBSCRIPTION', 'INITIAL_COPY', 'INDEXES', 'CATCH_UP', 'COMMITTED', 'CLEANUP'];
      const seen = sub.values.map((v) => order.indexOf(v.step));
      assert.deepEqual(seen, [...seen].sort((x, y) => x - y), `steps in order: ${sub.values.map((v) => v.step).join(' ')}`);
      assert.ok(seen.length >= 2 && !seen.includes(-1));
      const copied = sub.values.find((v) => order.indexOf(v.step) >= order.indexOf('INITIAL_COPY'))!;
      assert.ok(copied.tablesTotal! >= 2 && copied.tablesCopied === copied.tablesTotal, `the copy's figures: ${JSON.stringify(copied)}`); // t, and the template's tables
      const last = sub.values.at(-1)!;
      assert.equal(last.status, 'SUCCEEDED');
      assert.ok(last.pauseMs !== null && last.pauseMs >= 0, 'the cutover\'s pause, once measured');
      assert.equal(sub.values.filter((v) => v.status !== 'RUNNING').length, 1, 'one final value');
      // The tenant's own key follows it too (a finished move: its end, then the stream ends);
      // another tenant's key is told NOT_FOUND, as for an unknown move.
      const keyOf = async (slug: string) => (await t.gql(`mutation { createApiKey(input: { name: "watcher", role: TENANT_READER, tenantSlug: "${slug}" }) { key } }`)).data.createApiKey.key as string;
      const own = await keyOf('mv-watched');
      const ownClient = wsClient(t.url, own);
      const ours = subscribeWs(ownClient, WATCH, { id: r.move.id }, (d) => d.tenantMove as Seen);
      await until(() => ours.done, (done) => done, 'the tenant key\'s stream of a finished move to end');
      assert.deepEqual(ours.errors, []);
      assert.deepEqual(ours.values.map((v) => v.status), ['SUCCEEDED']);
      await ownClient.dispose();
      await provision('mv-onlooker');
      const other = await keyOf('mv-onlooker');
      const otherClient = wsClient(t.url, other);
      const theirs = subscribeWs(otherClient, WATCH, { id: r.move.id }, (d) => d.tenantMove);
      await until(() => theirs.done || theirs.errors.length > 0, (v) => v, 'the answer to another tenant\'s key');
      assert.equal(theirs.values.length, 0);
      assert.match(JSON.stringify(theirs.errors), /NOT_FOUND/);
      await otherClient.dispose();
      const unknown = subscribeWs(client, WATCH, { id: Buffer.from(`TenantMove:${randomUUID()}`).toString('base64') }, (d) => d.tenantMove);
      await until(() => unknown.done || unknown.errors.length > 0, (v) => v, 'the answer for an unknown move');
      assert.match(JSON.stringify(unknown.errors), /NOT_FOUND/);
      // Read with the tenant's key: Tenant.moves and node(id) give the move, with its clusters
      // as a tenant sees them (a name, no server figures); to another tenant's key it is null.
      const READ = `query($id: ID!) { node(id: $id) { ... on TenantMove { status targetCluster { name maxConnections } } } tenant(slug: "mv-watched") { moves { id status } } }`;
      const mine = await t.gql(READ, { id: r.move.id }, own);
      assert.deepEqual(mine.errors, undefined);
      assert.deepEqual(mine.data.node, { status: 'SUCCEEDED', targetCluster: { name: 'target-b', maxConnections: null } });
      assert.deepEqual(mine.data.tenant.moves, [{ id: r.move.id, status: 'SUCCEEDED' }]);
      const notMine = await t.gql(`query($id: ID!) { node(id: $id) { ... on TenantMove { status } } tenant(slug: "mv-onlooker") { moves { id } } }`, { id: r.move.id }, other);
      assert.equal(notMine.data.node, null);
      assert.deepEqual(notMine.data.tenant.moves, []);
    } finally {
      holdAfterCopy = null;
      release?.();
      await client.dispose();
    }
  });

  test('OFFLINE: dump and restore, the same password works on the target (a recovery pass right after the move committed leaves it alone)', async () => {
    const p = await provision(
      'mv-offline',
      `CREATE TABLE t (id serial PRIMARY KEY, v text)`,
      `INSERT INTO t (v) SELECT 'v' || g FROM generate_series(1, 1000) g`,
    );
    // Seen in a drain: recovery found the new move RUNNING before its run held it, and rolled it back.
    onMoveStarted = () => t.app.parts.moves.recover();
    const r = await move({ slug: 'mv-offline', targetClusterId: targetId, mode: 'OFFLINE', retainSourceHours: 0 }).finally(() => (onMoveStarted = null));
    assert.deepEqual(r.userErrors, []);
    const m = await finished(r.move.id);
    assert.equal(m.status, 'SUCCEEDED', m.error);
    const moved = await connectAs(onTarget(p.connectionString));
    await moved.query(`INSERT INTO t (v) VALUES ('after')`);
    assert.equal(Number((await moved.query('SELECT count(*) AS n FROM t')).rows[0].n), 1001);
    await moved.end();
    // retainSourceHours 0: nothing kept on the source.
    assert.equal(await loginRoles(a.url, p.tenant.roleName), null);
    assert.equal(m.retainedUntil === null || new Date(m.retainedUntil) <= new Date(), true);
  });

  test('a tenant moved away from a cluster twice within the retention leaves two retained copies there, and not its database', async () => {
    // (Retained names were stamped to the minute: the second rename was skipped, and the tenant's
    // database stayed on the source under its own name.)
    const p = await provision('mv-twice', `CREATE TABLE t (id serial PRIMARY KEY)`);
    const retained: string[] = [];
    for (const to of [targetId, sourceId, targetId]) {
      const r = await move({ slug: 'mv-twice', targetClusterId: to, mode: 'OFFLINE', retainSourceHours: 1 });
      assert.deepEqual(r.userErrors, []);
      const m = await finished(r.move.id);
      assert.equal(m.status, 'SUCCEEDED', m.error);
      retained.push(m.retainedDatabase);
    }
    const databases = (url: string) =>
      on(url, 'postgres', async (c) => (await c.query(`SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1`, [p.tenant.databaseName])).rows.map((r) => r.datname as string));
    assert.deepEqual(await databases(a.url), [retained[0], retained[2]].sort());
    assert.deepEqual(await databases(b.url), [p.tenant.databaseName, retained[1]].sort());
  });
});
