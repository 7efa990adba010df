// The pooler in front of many clusters (issue 17; here two PgBouncers, POOLER_SHARDS=2): each tenant's pool points at its own
// cluster; the pooler's roles are prepared on every registered cluster; and the cutover API of
// a tenant move (pause, repoint, resume) carries a client in a loop of transactions from one
// server to another with no failed transaction, on the same pooled connection string.
// Two private PostgreSQL servers (15 with TEST_DATABASE_URL, else 18) play the clusters.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import format from 'pg-format';
import { loadConfig, type Config } from '../src/platform/config.js';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { createControlClient, type ControlClient } from '../src/platform/db/control-client.js';
import { ClusterRegistry } from '../src/modules/clusters/index.js';
import { PauseTimeoutError } from '../src/modules/pools/index.js';
import { findPgBouncer } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { startPooler, type Pooler } from '../src/modules/pools/pooler-setup.js';
import { createLogger } from '../src/platform/logger.js';
import { freePorts } from './support/free-port.js';
import { startPrivateCluster, type PrivateCluster } from './support/private-cluster.js';
import { startTestTenantry, TEST_LIMITS, testServerUrl, type TestTenantry } from './support/test-tenantry.js';

if (!findPgBouncer() && process.env.CI !== 'true') {
  test('pooler across clusters', { skip: 'pgbouncer is not installed; with CI=true this fails' }, () => {});
} else {
  await suite();
}

async function suite() {
  const version = process.env.TEST_DATABASE_URL ? 15 : 18;
  let t: TestTenantry;
  let tmp: string;
  let config: Config;
  let db: ControlClient;
  let registry: ClusterRegistry;
  let pooler: Pooler;
  const servers: PrivateCluster[] = [];
  /** Cluster ids in the control database, in the order of `servers`. */
  const clusterIds: string[] = [];
  const envNames: string[] = [];
  const tenantIds: string[] = [];

  /** A tenant as control-database rows: ACTIVE, with a quota, on a cluster. */
  const addTenant = async (name: string, clusterId: string, quota = 5) => {
    const id = randomUUID();
    await db.tenant.create({
      data: { id, slug: name.replaceAll('_', '-'), displayName: name, status: 'ACTIVE', databaseName: name, roleName: name, clusterId, templateName: 'default', templateVersion: '1.1.0' },
    });
    await db.quota.create({ data: { tenantId: id, maxConnections: quota, updatedBy: 'test' } });
    tenantIds.push(id);
    return id;
  };
  // Two PgBouncers (POOLER_SHARDS=2): the cutover below goes through the one that has the pool.
  const pooledUrl = (name: string, password: string) => `postgresql://${name}:${password}@127.0.0.1:${pooler.driver!.addressOf(name).port}/${name}`;

  before(async () => {
    t = await startTestTenantry({ env: { INVENTORY_INTERVAL_MS: '0' } });
    tmp = await mkdtemp(path.join(tmpdir(), 'tenantry-poolclusters-'));
    await chmod(tmp, 0o711);
    config = loadConfig({
      DATABASE_URL: testServerUrl(),
      CONTROL_DATABASE: t.controlDatabase,
      TENANT_DB_PREFIX: t.prefix,
      POOLER: 'pgbouncer',
      POOL_MODE: 'transaction',
      POOLER_PORT: String(await freePorts(2)),
      POOLER_SHARDS: '2',
      POOLER_DIR: path.join(tmp, 'pgbouncer'),
    });
    ({ db } = createControlClient(withDatabase(testServerUrl(), t.controlDatabase), TEST_LIMITS));
    servers.push(...(await Promise.all([startPrivateCluster({ version }), startPrivateCluster({ version })])));
    for (const [i, s] of servers.entries()) {
      const env = `TENANTRY_TEST_POOLER_CLUSTER_${randomBytes(4).toString('hex').toUpperCase()}`;
      process.env[env] = s.url;
      envNames.push(env);
      const row = await db.cluster.create({ data: { name: `${t.prefix}c${i}`, connectionUrlEnv: env } });
      clusterIds.push(row.id);
    }
    registry = new ClusterRegistry(db, testServerUrl(), TEST_LIMITS);
    const defaultCluster = await registry.ensureDefault();
    pooler = await startPooler({ config, cluster: defaultCluster, clusters: registry, db, logger: createLogger('silent') });
  });
  after(async () => {
    await pooler?.stop();
    await registry?.close();
    await db?.tenant.deleteMany({ where: { id: { in: tenantIds } } });
    await db?.cluster.deleteMany({ where: { id: { in: clusterIds } } });
    await db?.$disconnect();
    await t?.cleanup();
    await Promise.all(servers.map((s) => s.remove()));
    for (const env of envNames) delete process.env[env];
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  describe('pools point at their cluster', () => {
    test('each tenant\'s pool line names its own cluster\'s host and port; one look-up per cluster', async () => {
      const a = await addTenant(`${t.prefix}on_a`, clusterIds[0]!);
      const b = await addTenant(`${t.prefix}on_b`, clusterIds[1]!);
      assert.deepEqual(await pooler.pools.request([a, b]), { outcome: 'IN_SYNC', error: null });
      const observed = new Map((await pooler.driver!.observe()).map((p) => [p.name, p]));
      assert.deepEqual([observed.get(`${t.prefix}on_a`)?.host, observed.get(`${t.prefix}on_a`)?.port], ['127.0.0.1', servers[0]!.port]);
      assert.deepEqual([observed.get(`${t.prefix}on_b`)?.host, observed.get(`${t.prefix}on_b`)?.port], ['127.0.0.1', servers[1]!.port]);
      const report = await pooler.pools.reconcile();
      assert.deepEqual([report.outcome, report.actions], ['IN_SYNC', []], 'the reconciler agrees');
    });

    test('the pooler\'s lookup role and auth user were prepared on every registered cluster at start', async () => {
      await pooler.pools.clustersPrepared; // in the background, after PgBouncer started
      for (const s of servers) {
        const c = new pg.Client({ connectionString: s.url });
        await c.connect();
        try {
          const { rows } = await c.query('SELECT rolname, rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = ANY($1) ORDER BY rolname', [[config.POOLER_LOOKUP_ROLE, `${t.controlDatabase}_pooler`]]);
          assert.deepEqual(rows.map((r) => [r.rolname, r.rolcanlogin]).sort(), [[`${t.controlDatabase}_pooler`, true], [config.POOLER_LOOKUP_ROLE, false]].sort());
        } finally {
          await c.end();
        }
      }
    });
  });

  describe('a cluster that does not answer', () => {
    test('does not fail the preparation of the others, and is prepared at its first use once it is back', async () => {
      const third = await startPrivateCluster({ version });
      servers.push(third);
      const env = `TENANTRY_TEST_POOLER_CLUSTER_${randomBytes(4).toString('hex').toUpperCase()}`;
      process.env[env] = third.url;
      envNames.push(env);
      const row = await db.cluster.create({ data: { name: `${t.prefix}c_down`, connectionUrlEnv: env } });
      clusterIds.push(row.id);
      await third.stop();
      await pooler.pools.prepareClusters(); // never rejects: logs, and leaves it for later
      await third.start();
      const c = new pg.Client({ connectionString: third.url });
      await c.connect();
      try {
        const roles = () => c.query('SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY($1)', [[config.POOLER_LOOKUP_ROLE, `${t.controlDatabase}_pooler`]]);
        assert.equal((await roles()).rowCount, 0, 'nothing made while it was down');
        const database = `${t.prefix}late`;
        await c.query(format('CREATE DATABASE %I', database));
        await pooler.pools.allowPoolerLogin(await registry.get(row.id), database);
        assert.equal((await roles()).rowCount, 2, 'lookup role and auth user made at the first use');
        const { rows } = await c.query(`SELECT pg_catalog.has_database_privilege($1, $2, 'CONNECT') AS ok`, [`${t.controlDatabase}_pooler`, database]);
        assert.equal(rows[0].ok, true);
      } finally {
        await c.end();
      }
    });
  });

  describe('cutover', () => {
    const name = () => `${t.prefix}mover`;
    const password = randomBytes(12).toString('hex');
    let tenantId: string;

    /** The tenant's database and role on a server, the role with the same SCRAM verifier as on the first. */
    const makeTenantOn = async (server: PrivateCluster, clusterId: string, verifier: string | null): Promise<string> => {
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      try {
        await c.query(format('CREATE ROLE %I LOGIN PASSWORD %L', name(), verifier ?? password));
        await c.query(format('CREATE DATABASE %I', name()));
        const inDb = new pg.Client({ connectionString: withDatabase(server.url, name()) });
        await inDb.connect();
        try {
          await inDb.query(format('CREATE TABLE public.marker (server int NOT NULL, n int NOT NULL)'));
          await inDb.query(format('GRANT INSERT, SELECT ON public.marker TO %I', name()));
        } finally {
          await inDb.end();
        }
        await pooler.pools.allowPoolerLogin(await registry.get(clusterId), name());
        return (await c.query('SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1', [name()])).rows[0].rolpassword;
      } finally {
        await c.end();
      }
    };

    before(async () => {
      const verifier = await makeTenantOn(servers[0]!, clusterIds[0]!, null);
      await makeTenantOn(servers[1]!, clusterIds[1]!, verifier); // what a move does: the same verifier, so the same password works
      tenantId = await addTenant(name(), clusterIds[0]!);
      assert.equal((await pooler.pools.request([tenantId])).outcome, 'IN_SYNC');
    });

    test('a client in a loop of transactions through the pooler sees no error across pause, repoint to another cluster and resume', async () => {
      const client = new pg.Client({ connectionString: pooledUrl(name(), password) });
      client.on('error', () => undefined);
      await client.connect();
      const ports: number[] = [];
      const errors: string[] = [];
      let stop = false;
      const loop = (async () => {
        for (let n = 0; !stop || ports.length === 0 || ports.at(-1) !== servers[1]!.port; n++) {
          try {
            await client.query('BEGIN');
            const { rows } = await client.query('INSERT INTO public.marker SELECT inet_server_port(), $1 RETURNING server', [n]);
            await client.query('COMMIT');
            ports.push(rows[0].server);
          } catch (err) {
            errors.push((err as Error).message);
            await client.query('ROLLBACK').catch(() => undefined);
          }
          if (ports.length > 10_000) break;
        }
      })();
      try {
        // A few transactions on the first server, then the cutover.
        while (ports.length < 5 && errors.length === 0) await new Promise((r) => setTimeout(r, 10));
        await pooler.pools.pauseTenantPool(name(), 10_000);
        await db.tenant.update({ where: { id: tenantId }, data: { clusterId: clusterIds[1]! } });
        await pooler.pools.repointTenantPool(tenantId);
        const before = ports.length;
        await pooler.pools.resumeTenantPool(name());
        stop = true;
        await loop;
        assert.deepEqual(errors, []);
        assert.ok(ports.slice(0, 5).every((p) => p === servers[0]!.port), 'first on the first server');
        assert.equal(ports.at(-1), servers[1]!.port, 'then on the second');
        // Nothing ran while the pool was paused and repointed (the queued transaction ran after the resume).
        assert.ok(ports.slice(before).every((p) => p === servers[1]!.port), `after the resume only the second server: ${ports.slice(before - 2).join(',')}`);
        const observed = (await pooler.driver!.observe()).find((p) => p.name === name());
        assert.equal(observed?.port, servers[1]!.port);
      } finally {
        stop = true;
        await loop.catch(() => undefined);
        await client.end().catch(() => undefined);
      }
      // The same pooled connection string works for a new client, on the second server.
      const fresh = new pg.Client({ connectionString: pooledUrl(name(), password) });
      await fresh.connect();
      try {
        assert.equal((await fresh.query('SELECT inet_server_port() AS p')).rows[0].p, servers[1]!.port);
      } finally {
        await fresh.end();
      }
    });

    test('resume is idempotent: a pool that is not paused, or not run at all, is done', async () => {
      await pooler.pools.resumeTenantPool(name());
      await pooler.pools.resumeTenantPool(name());
      await pooler.pools.resumeTenantPool(`${t.prefix}no_such_pool`);
    });

    test('a pause that cannot finish in time gives up: the pool is resumed and serves again', async () => {
      const holder = new pg.Client({ connectionString: pooledUrl(name(), password) });
      holder.on('error', () => undefined);
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT 1'); // holds a server connection until COMMIT (transaction pooling)
        await assert.rejects(pooler.pools.pauseTenantPool(name(), 300), PauseTimeoutError);
        await holder.query('COMMIT');
        // Resumed: a new client gets through at once.
        const other = new pg.Client({ connectionString: pooledUrl(name(), password) });
        await other.connect();
        try {
          assert.equal((await other.query('SELECT 1 AS one')).rows[0].one, 1);
        } finally {
          await other.end();
        }
      } finally {
        await holder.end().catch(() => undefined);
      }
    });
  });
}
