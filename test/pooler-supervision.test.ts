// The PgBouncer Tenantry runs, supervised: killed, it is reported down (pools ERROR) and
// restarted; a second Tenantry never touches a PgBouncer another live one owns; as root,
// its folder is made usable by the postgres user. Real PgBouncer, real PostgreSQL.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import format from 'pg-format';
import { findPgBouncer, PgBouncerProcess } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { lookupOsUser } from '../src/modules/pools/pgbouncer/pooler-folder.js';
import { AUTH_QUERY } from '../src/modules/pools/pooler-auth.sql.js';
import { freePort } from './support/free-port.js';
import { until } from './support/subscriptions.js';
import { connectAs, PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

const RECONCILE_INTERVAL_MS = 4000;

if (!findPgBouncer() && process.env.CI !== 'true') {
  test('pooler supervision', { skip: 'pgbouncer is not installed; with CI=true this fails' }, () => {});
} else {
  await suite();
}

async function suite() {
  let t: TestTenantry;
  let tmp: string;
  let poolerDir: string;
  /** Holds a restart until the test has looked at the outage. */
  let gate: Promise<void> = Promise.resolve();
  let openGate = () => {};
  const restartsAsked: number[] = [];

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'tenantry-supervision-'));
    await chmod(tmp, 0o711);
    poolerDir = path.join(tmp, 'pgbouncer');
    t = await startTestTenantry({
      env: { POOLER: 'pgbouncer', POOLER_PORT: String(await freePort()), POOLER_DIR: poolerDir, RECONCILE_INTERVAL_MS: String(RECONCILE_INTERVAL_MS) },
      failpoints: {
        'pooler.before-restart': async () => {
          restartsAsked.push(Date.now());
          await gate;
        },
      },
    });
  });
  after(async () => {
    openGate();
    await t?.cleanup();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const provision = async (slug: string, maxConnections: number) => {
    const r = await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections } });
    assert.deepEqual(r.data.provisionTenant.userErrors, []);
    const p = r.data.provisionTenant as { tenant: { databaseName: string; roleName: string }; pooledConnectionString: string };
    return p;
  };
  const poolOf = (slug: string) =>
    t.gql(`{ tenant(slug: "${slug}") { pool { status lastError } } }`).then((r) => r.data.tenant.pool as { status: string; lastError: string | null });
  const metric = async (name: string) => {
    const text = await (await fetch(`${t.url}/metrics`)).text();
    return Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1]);
  };
  const pooledQuery = async (connectionString: string) => {
    const c = await connectAs(connectionString);
    try {
      return (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
    } finally {
      await c.end();
    }
  };

  describe('a PgBouncer that exits is restarted', () => {
    test('SIGKILL: reported down and pools ERROR meanwhile; back and IN_SYNC within two reconcile periods', async () => {
      const p = await provision('survivor', 3);
      assert.equal(await pooledQuery(p.pooledConnectionString), p.tenant.roleName);
      const pooler = t.app.pooler;
      const pid = pooler.process!.pid!;
      assert.equal(pooler.status().state, 'up');
      assert.equal(await metric('tenantry_pooler_up'), 1);

      gate = new Promise((resolve) => (openGate = resolve));
      process.kill(pid, 'SIGKILL');
      const down = await until(() => pooler.status(), (s) => s.state === 'down', 'the pooler reported down');
      assert.equal(down.lastExit, 'killed by SIGKILL');
      const erred = await until(() => poolOf('survivor'), (pool) => pool.status === 'ERROR', 'the pool marked ERROR');
      assert.match(erred.lastError!, /PgBouncer is down \(killed by SIGKILL\)/);
      assert.equal(await metric('tenantry_pooler_up'), 0);
      await assert.rejects(pooledQuery(p.pooledConnectionString), /ECONNREFUSED/);
      await until(() => restartsAsked.length, (n) => n >= 1, 'a restart scheduled');

      const released = Date.now();
      openGate();
      const up = await until(() => pooler.status(), (s) => s.state === 'up', 'the pooler back', 2 * RECONCILE_INTERVAL_MS);
      assert.equal(up.restarts, 1);
      assert.notEqual(up.pid, pid);
      await until(() => poolOf('survivor'), (pool) => pool.status === 'IN_SYNC', 'the pool IN_SYNC again', Math.max(0, 2 * RECONCILE_INTERVAL_MS - (Date.now() - released)));
      assert.equal((await poolOf('survivor')).lastError, null);
      assert.equal(await pooledQuery(p.pooledConnectionString), p.tenant.roleName);
      assert.equal(await metric('tenantry_pooler_up'), 1);
      assert.equal(await metric('tenantry_pooler_restarts_total'), 1);
    });
  });

  describe('one owner per pooler folder', () => {
    test('a second Tenantry with the same POOLER_DIR fails clearly and leaves the first one\'s PgBouncer alone', async () => {
      const p = await provision('first-owner', 3);
      const before = t.app.pooler.status();
      await assert.rejects(
        startTestTenantry({ shareWith: t, env: { POOLER: 'pgbouncer', POOLER_PORT: String(await freePort()), POOLER_DIR: poolerDir } }),
        (err: Error) => {
          assert.match(err.message, new RegExp(`the pooler folder ${poolerDir} belongs to another running Tenantry \\(pid ${process.pid} `));
          assert.match(err.message, /Nothing in the folder was changed/);
          return true;
        },
      );
      const after = t.app.pooler.status();
      assert.deepEqual([after.state, after.pid, after.restarts], ['up', before.pid, before.restarts]);
      assert.equal(await pooledQuery(p.pooledConnectionString), p.tenant.roleName);
      assert.equal((await poolOf('first-owner')).status, 'IN_SYNC');
    });

    test('a second PgBouncerProcess on the folder is refused before it stops anything', async () => {
      const settings = t.app.pooler.process!.settings;
      const second = new PgBouncerProcess({
        dir: poolerDir,
        listenPort: await freePort(),
        serverHost: settings.serverHost,
        serverPort: settings.serverPort,
        authUser: settings.authUser,
        authQuery: AUTH_QUERY,
      });
      const pid = t.app.pooler.process!.pid;
      await assert.rejects(second.start(), { name: 'PoolerFolderBusyError' });
      assert.equal(t.app.pooler.process!.pid, pid);
      assert.equal(t.app.pooler.status().state, 'up');
    });
  });

  describe('running as root', { skip: userInfo().uid !== 0 ? 'only meaningful as root' : false }, () => {
    test('DATABASE_URL + PgBouncer with the default folder: TENANTRY_HOME left 0700 by an earlier run is opened to postgres', async () => {
      const home = path.join(tmp, 'home');
      await mkdir(home, { mode: 0o700 });
      await chmod(home, 0o700);
      const second = await startTestTenantry({ shareWith: t, env: { POOLER: 'pgbouncer', POOLER_PORT: String(await freePort()), TENANTRY_HOME: home } });
      try {
        const postgres = lookupOsUser('postgres');
        assert.equal(second.app.pooler.status().state, 'up');
        assert.equal((await stat(home)).mode & 0o777, 0o711);
        const dir = path.join(home, 'pgbouncer');
        assert.equal((await stat(dir)).uid, postgres.uid);
        assert.equal((await stat(path.join(dir, 'pgbouncer.log'))).uid, postgres.uid, 'PgBouncer (as postgres) writes its log');
      } finally {
        await second.stop(); // not cleanup(): it shares this file's control database
        await second.admin.end();
      }
    });

    test('a parent folder postgres cannot enter is named in the error, and left as it was', async () => {
      const closed = await mkdtemp(path.join(tmpdir(), 'tenantry-closed-')); // 0700, not Tenantry's
      try {
        await assert.rejects(
          startTestTenantry({ shareWith: t, env: { POOLER: 'pgbouncer', POOLER_PORT: String(await freePort()), POOLER_DIR: path.join(closed, 'x', 'pgbouncer') } }),
          new RegExp(`runs as the "postgres" user \\(it refuses root\\), which cannot enter ${closed}; set POOLER_DIR`),
        );
        assert.equal((await stat(closed)).mode & 0o777, 0o700);
      } finally {
        await rm(closed, { recursive: true, force: true });
      }
    });
  });
}
