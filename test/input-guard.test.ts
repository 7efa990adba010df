// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getNamedType, getNullableType, isEnumType, isInputObjectType, isListType, isNonNullType, isScalarType, type GraphQLInputType } from 'graphql';
import { schema } from '../src/graphql/schema.js';
import { PROVISION, startTestTenantry, type TestTenantry } from './support/test-tenantry.js';

let t: TestTenantry;

before(async () => {
  t = await startTestTenantry();
  const r = await t.gql(PROVISION, { input: { slug: 'guarded', displayName: 'Guarded', maxConnections: 20 } });
  assert.deepEqual(r.data.provisionTenant.userErrors, []);
});
after(() => t.cleanup());

/** A value that would be accepted for each field, so only the poisoned one is at fault. */
function plausible(name: string, type: GraphQLInputType): unknown {
  const named = getNamedType(type);
  if (isEnumType(named)) return named.getValues()[0]!.value === 'ADMIN' ? 'TENANT_READER' : named.getValues()[0]!.value;
  if (isInputObjectType(named)) return objectFor(named.getFields());
  switch (named.name) {
    case 'Int':
      return { maxConnections: 20, pid: 1, concurrency: 1, canarySize: 0 }[name] ?? 1;
    case 'Boolean':
      return false;
    case 'DateTime':
      return new Date(Date.now() + 86_400_000).toISOString();
    default:
      return { slug: 'guarded', confirm: 'guarded', tenantSlug: 'guarded', template: 'default', templateVersion: '1.1.0', targetVersion: '1.1.0' }[name] ?? 'Guarded';
  }
}

function objectFor(fields: Record<string, { type: GraphQLInputType }>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([n, f]) => [n, plausible(n, f.type)]));
}

/** Every string (and ID) field of every mutation's input, with the mutation and its input type (`list`: a list of strings, such as slugs). */
function poisonable(): { mutation: string; inputType: string; field: string; list: boolean; base: Record<string, unknown> }[] {
  const out = [];
  for (const [mutation, field] of Object.entries(schema.getMutationType()!.getFields())) {
    const arg = field.args.find((a) => a.name === 'input');
    assert.ok(arg, `${mutation} takes one input`);
    const inputType = getNamedType(arg.type);
    assert.ok(isInputObjectType(inputType));
    const typeName = `${inputType.name}${isNonNullType(arg.type) ? '!' : ''}`;
    const base = objectFor(inputType.getFields());
    for (const [name, f] of Object.entries(inputType.getFields())) {
      const named = getNamedType(f.type);
      if (isScalarType(named) && (named.name === 'String' || named.name === 'ID')) out.push({ mutation, inputType: typeName, field: name, list: isListType(getNullableType(f.type)), base });
    }
  }
  return out;
}

async function snapshot() {
  const db = t.app.parts.db;
  const [audit, tenants, keys, changes, operations, tenant, quota] = await Promise.all([
    db.auditEvent.count(),
    db.tenant.count(),
    db.apiKey.count(),
    db.quotaChange.count(),
    db.operation.count(),
    db.tenant.findUniqueOrThrow({ where: { slug: 'guarded' }, select: { status: true, displayName: true, updatedAt: true } }),
    db.quota.findFirstOrThrow({ where: { tenant: { slug: 'guarded' } }, select: { maxConnections: true, updatedAt: true } }),
  ]);
  const { rows } = await t.admin.query(
    `SELECT (SELECT count(*) FROM pg_catalog.pg_database WHERE starts_with(datname, $1))::int AS databases,
            (SELECT count(*) FROM pg_catalog.pg_roles WHERE starts_with(rolname, $1))::int AS roles,
            (SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = $2) AS login,
            (SELECT rolconnlimit FROM pg_catalog.pg_roles WHERE rolname = $2) AS connlimit`,
    [t.prefix, `${t.prefix}guarded`],
  );
  return { audit, tenants, keys, changes, operations, tenant, quota, cluster: rows[0] };
}

test('a NUL character in any string of any mutation\'s input is INVALID_INPUT naming the field, and changes nothing', async () => {
  const cases = poisonable();
  const mutations = new Set(cases.map((c) => c.mutation));
  assert.ok(mutations.size >= 12, `every mutation with a string input is covered (${[...mutations].join(', ')})`);
  const before = await snapshot();
  for (const c of cases) {
    const poison = `gua\u0000rded`;
    const input = { ...c.base, [c.field]: c.list ? [poison] : poison };
    const r = await t.gql(`mutation($input: ${c.inputType}) { ${c.mutation}(input: $input) { userErrors { code field message } } }`, { input });
    assert.equal(r.errors, undefined, `${c.mutation}.${c.field}: ${JSON.stringify(r.errors)}`);
    // In a list, the item at fault is named: canary[0].
    assert.deepEqual(r.data[c.mutation].userErrors.map((e: any) => [e.code, e.field]), [['INVALID_INPUT', c.list ? `${c.field}[0]` : c.field]], `${c.mutation}.${c.field}`);
    assert.match(r.data[c.mutation].userErrors[0].message, /must not contain NUL/);
  }
  assert.deepEqual(await snapshot(), before, 'no row, audit event, role or database changed');
});

test('strings over their field\'s length are INVALID_INPUT before anything changes', async () => {
  const before = await snapshot();
  const tooLong = [
    ['updateTenantQuota', 'UpdateTenantQuotaInput!', { slug: 'guarded', maxConnections: 25, reason: 'r'.repeat(501) }, 'reason', 500],
    ['suspendTenant', 'SuspendTenantInput!', { slug: 'guarded', reason: 'r'.repeat(501) }, 'reason', 500],
    ['provisionTenant', 'ProvisionTenantInput!', { slug: 'longname', displayName: 'd'.repeat(201) }, 'displayName', 200],
    ['deprovisionTenant', 'DeprovisionTenantInput!', { slug: 'guarded', confirm: 'c'.repeat(41) }, 'confirm', 40],
    ['createApiKey', 'CreateApiKeyInput!', { name: 'n'.repeat(101), role: 'TENANT_READER', tenantSlug: 'guarded' }, 'name', 100],
    ['upgradeTenantSchema', 'UpgradeTenantSchemaInput!', { slug: 'guarded', targetVersion: '1'.repeat(33) }, 'targetVersion', 32],
    ['reconcilePools', 'ReconcilePoolsInput', { reason: 'r'.repeat(501) }, 'reason', 500],
    ['terminateConnection', 'TerminateConnectionInput!', { slug: 's'.repeat(1001), pid: 1 }, 'slug', 1000],
  ] as const;
  for (const [mutation, type, input, field, max] of tooLong) {
    const r = await t.gql(`mutation($input: ${type}) { ${mutation}(input: $input) { userErrors { code field message } } }`, { input });
    assert.deepEqual(r.data[mutation].userErrors.map((e: any) => [e.code, e.field]), [['INVALID_INPUT', field]], mutation);
    assert.match(r.data[mutation].userErrors[0].message, new RegExp(`at most ${max} characters`));
  }
  assert.deepEqual(await snapshot(), before);
  // Within the limits, the same calls work.
  const ok = await t.gql(`mutation { updateTenantQuota(input: { slug: "guarded", maxConnections: 25, reason: "${'r'.repeat(500)}" }) { quota { maxConnections } userErrors { code } } }`);
  assert.deepEqual(ok.data.updateTenantQuota, { quota: { maxConnections: 25 }, userErrors: [] });
});
