import { ReadinessMonitor, type ReadinessCheck, type ReadinessReport, type TenantHealth } from '../readiness.js';
import { TenantInventory, type InventoryRecord } from '../tenant-inventory.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from '../../tenants/graphql/index.js';

const HealthCheckRef = builder.objectRef<ReadinessCheck>('HealthCheck').implement({
  description: 'One readiness check.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'What was checked: "control-database", "pooler", "event-bus", "cluster:<name>"…' }),
    ok: t.exposeBoolean('ok', { description: 'Whether it passed.' }),
    detail: t.exposeString('detail', { description: 'What was found (e.g. "reachable, 12 migrations applied", or the error).' }),
  }),
});

const TenantHealthRef = builder.objectRef<TenantHealth>('TenantHealth').implement({
  description: 'A tenant with problems, as its records show them.',
  fields: (t) => ({
    slug: t.exposeString('slug', { description: 'The tenant\'s slug.' }),
    problems: t.exposeStringList('problems', { description: 'What is wrong, one line each: not inventoried yet, a missing database or table, an unreadable database, not secured, an INCOMPATIBLE schema, an extension not OK.' }),
    blocking: t.exposeBoolean('blocking', { description: 'An INCOMPATIBLE schema: in production the server is not ready.' }),
  }),
});

const ServerModeEnum = builder.enumType('ServerMode', {
  description: 'How the server runs (NODE_ENV).',
  values: {
    PRODUCTION: { value: 'production', description: 'NODE_ENV=production: GraphiQL off unless GRAPHIQL=on, and a tenant with an INCOMPATIBLE schema makes the server unready.' },
    DEVELOPMENT: { value: 'development', description: 'Any other NODE_ENV.' },
  } as const,
});

const HealthRef = builder.objectRef<ReadinessReport>('Health').implement({
  description: 'The same report as GET /health/ready.',
  fields: (t) => ({
    ready: t.exposeBoolean('ready', { description: 'Whether the server is ready (GET /health/ready answers 200).' }),
    degraded: t.exposeBoolean('degraded', { description: 'Ready, but a check that does not make it unready failed (the event bus, a managed cluster): see checks.' }),
    mode: t.field({ type: ServerModeEnum, description: 'How the server runs (NODE_ENV).', resolve: (r) => r.mode }),
    checks: t.field({ type: [HealthCheckRef], description: 'Every check: control database, pooler, event bus, each cluster.', resolve: (r) => r.checks }),
    tenantsChecked: t.exposeInt('tenantsChecked', { description: 'ACTIVE and SUSPENDED tenants whose records were judged.' }),
    tenants: t.field({ type: [TenantHealthRef], description: 'Every tenant with problems (GET /health/ready lists the first 50).', resolve: (_r, _, ctx) => ctx.services.get(ReadinessMonitor).allTenantProblems() }),
    tenantsWithProblems: t.exposeInt('tenantsWithProblems', { description: 'How many of them have problems.' }),
    reasons: t.exposeStringList('reasons', { description: 'Why the server is not ready.' }),
    warnings: t.exposeStringList('warnings', { description: 'Problems that do not make the server unready (in development: all of them).' }),
    checkedAt: t.expose('checkedAt', { type: 'DateTime', description: 'When this report was computed.' }),
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
    checkedAt: t.expose('checkedAt', { type: 'DateTime', description: 'When the inventory looked.' }),
    databasePresent: t.exposeBoolean('databasePresent', { description: 'Whether the tenant\'s database exists on the cluster.' }),
    missingTables: t.stringList({ description: 'Tables its template version has that the database lacks.', resolve: (i) => i.missingTables as string[] }),
    drift: t.stringList({ description: 'Changes made behind Tenantry\'s back, found by the last pass.', resolve: (i) => i.drift as string[] }),
    error: t.exposeString('error', { nullable: true, description: 'Why the tenant database could not be read; null when it could.' }),
  }),
});

builder.objectField(TenantRef, 'inventory', (t) =>
  t.loadable({
    type: InventoryRef,
    nullable: true,
    description: 'What the last inventory found in its database; null before the first (refreshTenant runs one now).',
    load: (ids: string[], ctx) => ctx.services.get(TenantInventory).byTenantIds(ids),
    resolve: (tenant) => tenant.id,
  }),
);
