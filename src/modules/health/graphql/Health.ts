import { ReadinessMonitor, type ReadinessCheck, type ReadinessReport, type TenantHealth } from '../readiness.js';
import { TenantInventory, type InventoryRecord } from '../tenant-inventory.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from '../../tenants/graphql/index.js';

const HealthCheckRef = builder.objectRef<ReadinessCheck>('HealthCheck').implement({
  fields: (t) => ({ name: t.exposeString('name'), ok: t.exposeBoolean('ok'), detail: t.exposeString('detail') }),
});

const TenantHealthRef = builder.objectRef<TenantHealth>('TenantHealth').implement({
  fields: (t) => ({
    slug: t.exposeString('slug'),
    problems: t.exposeStringList('problems'),
    blocking: t.exposeBoolean('blocking', { description: 'An INCOMPATIBLE schema: in production the server is not ready.' }),
  }),
});

const HealthRef = builder.objectRef<ReadinessReport>('Health').implement({
  description: 'The same report as GET /health/ready.',
  fields: (t) => ({
    ready: t.exposeBoolean('ready'),
    degraded: t.exposeBoolean('degraded', { description: 'Ready, but a check that does not make it unready failed (the event bus, a managed cluster): see checks.' }),
    mode: t.exposeString('mode', { description: 'production (NODE_ENV=production) or development.' }),
    checks: t.field({ type: [HealthCheckRef], resolve: (r) => r.checks }),
    tenantsChecked: t.exposeInt('tenantsChecked'),
    tenants: t.field({ type: [TenantHealthRef], description: 'Every tenant with problems (GET /health/ready lists the first 50).', resolve: (_r, _, ctx) => ctx.services.get(ReadinessMonitor).allTenantProblems() }),
    tenantsWithProblems: t.exposeInt('tenantsWithProblems'),
    reasons: t.exposeStringList('reasons', { description: 'Why the server is not ready.' }),
    warnings: t.exposeStringList('warnings'),
    checkedAt: t.expose('checkedAt', { type: 'DateTime' }),
  }),
});

builder.queryField('health', (t) =>
  t.field({
    type: HealthRef,
    description: 'Readiness, with every check and every tenant problem (admins only); computed in the background, see checkedAt.',
    authScopes: { admin: true },
    resolve: (_, __, ctx) => ctx.services.get(ReadinessMonitor).current(),
  }),
);

const InventoryRef = builder.objectRef<InventoryRecord>('TenantInventory').implement({
  description: 'What the last inventory found in the tenant database.',
  fields: (t) => ({
    checkedAt: t.expose('checkedAt', { type: 'DateTime' }),
    databasePresent: t.exposeBoolean('databasePresent'),
    missingTables: t.stringList({ resolve: (i) => i.missingTables as string[] }),
    drift: t.stringList({ description: 'Changes made behind Tenantry\'s back, found by the last pass.', resolve: (i) => i.drift as string[] }),
    error: t.exposeString('error', { nullable: true }),
  }),
});

builder.objectField(TenantRef, 'inventory', (t) =>
  t.loadable({
    type: InventoryRef,
    nullable: true,
    load: (ids: string[], ctx) => ctx.services.get(TenantInventory).byTenantIds(ids),
    resolve: (tenant) => tenant.id,
  }),
);
