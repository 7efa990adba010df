// Issue 9: many mutations at once never wedge Tenantry or lose a result. Every call answers
// (a result, a retryable TENANT_BUSY / TIMEOUT, or the tenant gone), none with INTERNAL_SERVER_ERROR, and
// afterwards PostgreSQL, PgBouncer and the control database agree about every tenant.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findPgBouncer } from '../src/modules/pools/pgbouncer/pgbouncer-process.js';
import { connectAs, PROVISION, settle, startTestTenantry, type GraphQLResponse, type TestTenantry } from './support/test-tenantry.js';
import { freePort } from './support/free-port.js';

if (!findPgBouncer() && process.env.CI !== 'true') {
  test('concurrent mutations', { skip: 'pgbouncer is not installed; with CI=true this fails' }, () => {});
} else {
  suite();
}

/** Answers a caller may get under load, besides success: retry later. */
const RETRYABLE = new Set(['TENANT_BUSY', 'TIMEOUT']);
/** Also, for calls on a tenant another call may deprovision: it is gone (NOT_FOUND), or went while the call waited for it (INVALID_STATE). */
const GONE_OR_RETRYABLE = new Set([...RETRYABLE, 'NOT_FOUND', 'INVALID_STATE']);

function suite() {
  let t: TestTenantry;
  let poolerDir: string;

  before(async () => {
    poolerDir = await mkdtemp(path.join(tmpdir(), 'tenantry-concurrency-'));
    t = await startTestTenantry({ env: { POOLER: 'pgbouncer', POOLER_PORT: String(await freePort()), POOLER_DIR: poolerDir } });
  });
  after(async () => {
    await t.cleanup();
    await rm(poolerDir, { recursive: true, force: true });
  });

  /** The call answered: no GraphQL error at all, and any user error is a retryable one (or one the test expects). */
  function answered(r: GraphQLResponse, field: string, allowed: Set<string> = RETRYABLE): { ok: boolean; code?: string } {
    assert.equal(r.errors, undefined, `${field}: ${JSON.stringify(r.errors)}`);
    const errors = (r.data[field]?.userErrors ?? []) as { code: string; message: string }[];
    for (const e of errors) assert.ok(allowed.has(e.code), `${field}: ${e.code} ${e.message}`);
    return errors.length ? { ok: false, code: errors[0]!.code } : { ok: true };
  }

  /**
   * PostgreSQL, PgBouncer and the control database agree about these tenants: ACTIVE ones have
   * a login role with CONNECTION LIMIT = quota, a database with quota + reserve, and a pool of
   * their quota; SUSPENDED ones the same without login and without a pool; gone ones nothing.
   */
  async function assertConsistent(slugs: string[]): Promise<void> {
    await settle(t);
    const tenants = await t.app.parts.db.tenant.findMany({ where: { slug: { in: slugs } }, include: { quota: true, pool: true } });
    const names = tenants.map((x) => x.roleName);
    const { rows } = await t.admin.query(
      `SELECT r.rolname AS name, r.rolcanlogin AS login, r.rolconnlimit AS role_limit, d.datconnlimit AS db_limit
       FROM pg_roles r LEFT JOIN pg_database d ON d.datname = r.rolname WHERE r.rolname = ANY($1)`,
      [names],
    );
    const onServer = new Map(rows.map((r) => [r.name, r]));
    const dbs = new Set((await t.admin.query('SELECT datname FROM pg_database WHERE datname = ANY($1)', [names])).rows.map((r) => r.datname));
    const bouncer = new Map((await t.app.parts.pools.driver!.observe()).map((p) => [p.name, p]));
    for (const x of tenants) {
      const where = `tenant ${x.slug} (${x.status})`;
      assert.ok(!['PROVISIONING', 'DEPROVISIONING'].includes(x.status), `${where} is stuck`);
      const server = onServer.get(x.roleName);
      if (x.status === 'ACTIVE' || x.status === 'SUSPENDED') {
        const quota = x.quota!.maxConnections;
        assert.deepEqual(server, { name: x.roleName, login: x.status === 'ACTIVE', role_limit: quota, db_limit: quota + 3 }, where);
        if (x.status === 'ACTIVE') {
          assert.equal(x.pool?.status, 'IN_SYNC', where);
          assert.equal(x.pool?.poolSize, quota, where);
          assert.equal(bouncer.get(x.databaseName)?.poolSize, quota, `${where}: PgBouncer's pool`);
        } else {
          assert.equal(bouncer.has(x.databaseName), false, `${where}: no pool in PgBouncer`);
        }
      } else {
        assert.equal(server, undefined, `${where}: no role left`);
        assert.equal(dbs.has(x.databaseName), false, `${where}: no database left`);
        assert.equal(bouncer.has(x.databaseName), false, `${where}: no pool left`);
      }
    }
  }

  const QUOTA = `mutation($slug: String!, $n: Int!) { updateTenantQuota(input: { slug: $slug, maxConnections: $n }) { quota { maxConnections } userErrors { code message } } }`;

  describe('at once', () => {
    test('12 quota changes on one tenant: all answer, none hangs, the last one stands everywhere', async () => {
      const p = (await t.gql(PROVISION, { input: { slug: 'contended', displayName: 'c', maxConnections: 10 } })).data.provisionTenant;
      assert.deepEqual(p.userErrors, []);
      const values = Array.from({ length: 12 }, (_, i) => 11 + i);
      const results = await Promise.all(values.map((n) => t.gql(QUOTA, { slug: 'contended', n })));
      const outcomes = results.map((r) => answered(r, 'updateTenantQuota'));
      assert.ok(outcomes.filter((o) => o.ok).length >= 1, 'at least one change went through');
      await assertConsistent(['contended']);
      // The recorded quota is one that was asked for, and the history holds every change that answered ok.
      const tenant = await t.app.parts.db.tenant.findUniqueOrThrow({ where: { slug: 'contended' }, include: { quota: true, quotaChanges: true } });
      assert.ok(values.includes(tenant.quota!.maxConnections));
      assert.equal(tenant.quotaChanges.length - 1, outcomes.filter((o) => o.ok).length, 'one QuotaChange per change that answered ok');
    });

    test('50 mixed mutations across tenants: all answer, none INTERNAL_SERVER_ERROR, and everything agrees afterwards', async () => {
      const slugs = Array.from({ length: 8 }, (_, i) => `mixed-${i}`);
      for (const slug of slugs) assert.deepEqual((await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 5 } })).data.provisionTenant.userErrors, []);
      // A fixed, varied sequence (no randomness: a failure must be reproducible).
      let seed = 7;
      const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
      const calls: (() => Promise<void>)[] = [];
      const fresh = ['mixed-new-0', 'mixed-new-1', 'mixed-new-2'];
      for (let i = 0; i < 50; i++) {
        const slug = i < 3 ? fresh[i]! : slugs[next(slugs.length)]!;
        const kind = i < 3 ? 'provision' : ['quota', 'quota', 'rotate', 'suspend', 'resume', 'quota', 'deprovision'][next(7)]!;
        calls.push(async () => {
          if (kind === 'provision') {
            answered(await t.gql(PROVISION, { input: { slug, displayName: slug, maxConnections: 6 } }), 'provisionTenant');
          } else if (kind === 'quota') {
            answered(await t.gql(QUOTA, { slug, n: 5 + next(20) }), 'updateTenantQuota', GONE_OR_RETRYABLE);
          } else if (kind === 'rotate') {
            const r = await t.gql(`mutation($slug: String!) { rotateTenantCredentials(input: { slug: $slug }) { connectionString userErrors { code message } } }`, { slug });
            if (answered(r, 'rotateTenantCredentials', GONE_OR_RETRYABLE).ok) {
              const c = await connectAs(r.data.rotateTenantCredentials.connectionString).catch((err: { code?: string }) => err);
              // A rotation that answered gives credentials that work (unless the tenant was suspended or removed since).
              if ('end' in c) await c.end();
              else assert.ok(['28000', '3D000', '28P01'].includes(c.code!), `rotated credentials refused: ${c.code}`);
            }
          } else if (kind === 'suspend') {
            answered(await t.gql(`mutation($slug: String!) { suspendTenant(input: { slug: $slug }) { userErrors { code message } } }`, { slug }), 'suspendTenant', GONE_OR_RETRYABLE);
          } else if (kind === 'resume') {
            answered(await t.gql(`mutation($slug: String!) { resumeTenant(input: { slug: $slug }) { userErrors { code message } } }`, { slug }), 'resumeTenant', GONE_OR_RETRYABLE);
          } else {
            answered(await t.gql(`mutation($slug: String!) { deprovisionTenant(input: { slug: $slug, confirm: $slug }) { userErrors { code message } } }`, { slug }), 'deprovisionTenant', GONE_OR_RETRYABLE);
          }
        });
      }
      await Promise.all(calls.map((c) => c()));
      await assertConsistent([...slugs, ...fresh]);
      // The service is not wedged: a mutation now goes straight through.
      const live = await t.app.parts.db.tenant.findFirstOrThrow({ where: { slug: { in: [...slugs, ...fresh] }, status: 'ACTIVE' } });
      const r = await t.gql(QUOTA, { slug: live.slug, n: 9 });
      assert.deepEqual(r.data.updateTenantQuota.userErrors, []);
      await assertConsistent([live.slug]);
    });
  });
}
