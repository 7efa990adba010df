// @test-scope once
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Prisma } from '../src/generated/prisma/client.js';
import { auditEventInsert } from '../src/modules/audit/index.js';
import { quotaOf, recordedQuotaChange, recordQuotaChange, type RecordedQuotaRow } from '../src/modules/quotas/quota-change.sql.js';
import { TENANT_COLUMNS } from '../src/modules/tenants/index.js';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { createControlClient, type ControlClient } from '../src/platform/db/control-client.js';
import { PROVISION, startTestTenantry, TEST_LIMITS, testServerUrl, type TestTenantry } from './support/test-tenantry.js';

// The statements that write a change and return its rows in one round trip (the quota record,
// a provisioning's first and last records) return what Prisma would read: same fields, same
// types, same values. And the quota record writes all of its rows or none.

let t: TestTenantry;
let db: ControlClient;
let tenantId: string;

before(async () => {
  t = await startTestTenantry();
  db = createControlClient(withDatabase(testServerUrl(), t.controlDatabase), TEST_LIMITS).db;
  const r = await t.gql(PROVISION, { input: { slug: 'rows', displayName: 'Rows', maxConnections: 12 } });
  assert.deepEqual(r.data?.provisionTenant.userErrors, [], JSON.stringify(r));
  tenantId = (await db.tenant.findUniqueOrThrow({ where: { slug: 'rows' } })).id;
});
after(async () => {
  await db?.$disconnect();
  await t?.cleanup();
});

test('TENANT_COLUMNS reads a tenants row as Prisma does (every field, its type and value)', async () => {
  const viaPrisma = await db.tenant.findUniqueOrThrow({ where: { id: tenantId } });
  const [viaSql] = await db.$queryRaw<unknown[]>`SELECT ${TENANT_COLUMNS} FROM tenants tenant WHERE tenant.id = ${tenantId}::uuid`;
  assert.deepEqual(viaSql, viaPrisma);
  assert.equal(viaPrisma.status, 'ACTIVE');
  assert.equal(typeof viaPrisma.rosterXid, 'bigint', 'the roster stamp is set, so its type is compared too');
  assert.ok(viaPrisma.placement !== null && viaPrisma.securedAt instanceof Date, 'the json and the nullable dates are compared with values');
});

test('QUOTA_COLUMNS reads a quotas row as Prisma does', async () => {
  const viaPrisma = await db.quota.findUniqueOrThrow({ where: { tenantId } });
  const [viaSql] = await db.$queryRaw<unknown[]>(quotaOf(tenantId));
  assert.deepEqual(viaSql, viaPrisma);
  assert.equal(typeof viaPrisma.rosterXid, 'bigint', 'the roster stamp is set, so its type is compared too');
});

test('provisioning recorded its start and its end with their audit events and the first quota change', async () => {
  const events = await db.auditEvent.findMany({ where: { tenantId }, orderBy: { id: 'asc' } });
  const started = events.find((e) => e.action === 'tenant.provision.started');
  const done = events.find((e) => e.action === 'tenant.provisioned');
  assert.equal(started?.tenantSlug, 'rows');
  assert.deepEqual((started?.metadata as { maxConnections?: number }).maxConnections, 12);
  assert.equal(done?.subject, (await db.tenant.findUniqueOrThrow({ where: { id: tenantId } })).databaseName);
  assert.equal(done?.correlationId, started?.correlationId, 'one request');
  const changes = await db.quotaChange.findMany({ where: { tenantId } });
  assert.deepEqual(changes.map((c) => [c.oldMaxConnections, c.newMaxConnections, c.reason]), [[null, 12, 'provisioned']]);
});

test('the quota record returns what Prisma reads back, and writes nothing for a tenant without a quota', async () => {
  const op = { actor: 'test:control-rows', correlationId: 'control-rows-1' };
  const change = { tenantId, actor: op.actor, oldMaxConnections: 12, newMaxConnections: 13, reason: 'row shape' };
  const audited = (from: Prisma.Sql) => auditEventInsert(op, { category: 'quota', action: 'quota.updated', tenant: { id: tenantId, slug: 'rows' }, subject: 'r', metadata: { n: 13 } }, from);
  const rows = await db.$queryRaw<RecordedQuotaRow[]>(recordQuotaChange(change, audited));
  assert.equal(rows.length, 1);
  const recorded = recordedQuotaChange(rows[0]!, change);
  assert.deepEqual(recorded.quota, await db.quota.findUniqueOrThrow({ where: { tenantId } }));
  assert.deepEqual(recorded.change, await db.quotaChange.findUniqueOrThrow({ where: { id: recorded.change.id } }));
  const event = await db.auditEvent.findFirstOrThrow({ where: { correlationId: op.correlationId } });
  assert.deepEqual([event.action, event.tenantId, event.metadata], ['quota.updated', tenantId, { n: 13 }]);

  // A tenant id without a quota row: no row back, and no history or audit row written.
  const nobody = '00000000-0000-4000-8000-000000000000';
  const none = await db.$queryRaw<RecordedQuotaRow[]>(
    recordQuotaChange({ ...change, tenantId: nobody }, (from) => auditEventInsert({ ...op, correlationId: 'control-rows-2' }, { category: 'quota', action: 'quota.updated', tenant: null }, from)),
  );
  assert.equal(none.length, 0);
  assert.equal(await db.quotaChange.count({ where: { tenantId: nobody } }), 0);
  assert.equal(await db.auditEvent.count({ where: { correlationId: 'control-rows-2' } }), 0);
});
