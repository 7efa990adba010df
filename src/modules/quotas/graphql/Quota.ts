import { QuotaStore, type Quota, type QuotaChange } from '../quota-store.js';
import { CapacityPlanner } from '../cluster-capacity.js';
import { builder } from '../../../graphql/builder.js';
import { assertPageSize, pageSizeOf } from '../../../graphql/pagination.js';
import { ClusterRegistry } from '../../clusters/index.js';
import { ADMIN_FIGURE, ClusterRef } from '../../clusters/graphql/index.js';
import { TenantRef } from '../../tenants/graphql/index.js';

export const QuotaChangeRef = builder.objectRef<QuotaChange>('QuotaChange').implement({
  description: 'One change of a tenant\'s connection quota.',
  fields: (t) => ({
    changedAt: t.expose('at', { type: 'DateTime', description: 'When the quota changed.' }),
    actor: t.exposeString('actor', { description: 'Who changed it: "<key name> (apikey:<key id>)", or "system".' }),
    oldMaxConnections: t.exposeInt('oldMaxConnections', { nullable: true, description: 'The quota before, in connections; null for the first quota (at provisioning).' }),
    newMaxConnections: t.exposeInt('newMaxConnections', { description: 'The quota after, in connections.' }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why, as the caller gave it ("provisioned" for the first quota); null when none was given.' }),
  }),
});

export const QuotaRef = builder.objectRef<Quota>('Quota').implement({
  description: 'How many connections a tenant\'s role may hold (its CONNECTION LIMIT).',
  fields: (t) => ({
    maxConnections: t.exposeInt('maxConnections', { description: 'Connections the role may hold at once.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When it was last set.' }),
    updatedBy: t.exposeString('updatedBy', { description: 'Who last set it: "<key name> (apikey:<key id>)", or "system".' }),
    history: t.field({
      type: [QuotaChangeRef],
      description: 'Changes, newest first: at most GRAPHQL_MAX_PAGE_SIZE (more is refused).',
      args: { first: t.arg.int({ defaultValue: 20, description: 'How many changes, 0 to GRAPHQL_MAX_PAGE_SIZE (default 20).' }) },
      complexity: (args, ctx) => ({ field: 1, multiplier: pageSizeOf({ first: args.first }, ctx.config) }),
      resolve: (q, args, ctx) => {
        const first = args.first ?? 20;
        assertPageSize('first', first, ctx.config);
        // Every quota of a page asks with the same `first`: one query for all of them.
        return ctx.loader<string, QuotaChange[]>('quota-history', first, (ids) => ctx.services.get(QuotaStore).historyByTenantIds(ids, first)).load(q.tenantId);
      },
    }),
  }),
});

builder.objectField(TenantRef, 'quota', (t) =>
  t.loadable({
    type: QuotaRef,
    nullable: true,
    description: 'Its connection quota; null when none is recorded.',
    load: (ids: string[], ctx) => ctx.services.get(QuotaStore).byTenantIds(ids),
    resolve: (tenant) => tenant.id,
  }),
);

builder.objectFields(ClusterRef, (t) => ({
  allocatedConnections: t.loadable({
    ...ADMIN_FIGURE,
    type: 'Int',
    nullable: true,
    description: 'Sum of the quotas of the tenants on this cluster, deprovisioned ones excepted (null for tenant keys).',
    load: (ids: string[], ctx) => ctx.services.get(QuotaStore).allocationsByClusterIds(ids).then((rows) => rows.map((r) => r.allocatedConnections)),
    resolve: (c) => c.id,
  }),
  tenantCount: t.loadable({
    ...ADMIN_FIGURE,
    type: 'Int',
    nullable: true,
    description: 'Tenants on this cluster, deprovisioned ones excepted (null for tenant keys).',
    load: (ids: string[], ctx) => ctx.services.get(QuotaStore).allocationsByClusterIds(ids).then((rows) => rows.map((r) => r.tenantCount)),
    resolve: (c) => c.id,
  }),
  capacity: t.int({
    ...ADMIN_FIGURE,
    nullable: true,
    description: 'Connections its tenants may be promised in all: (max_connections − reserved − Tenantry\'s own) × OVERCOMMIT_FACTOR (null for tenant keys).',
    resolve: async (c, _, ctx) => {
      const [cluster, facts] = await Promise.all([ctx.services.get(ClusterRegistry).get(c.id), ctx.clusterFacts.load(c.id).catch(() => null)]);
      return facts ? ctx.services.get(CapacityPlanner).clusterCapacity(cluster, facts).then((cap) => cap.capacity) : null;
    },
  }),
  roomConnections: t.int({
    ...ADMIN_FIGURE,
    nullable: true,
    description: 'Connections it can still promise: capacity less allocatedConnections (negative when over-committed). Placement puts a new tenant only where its quota fits. Null when it cannot be reached, and for tenant keys.',
    resolve: async (c, _, ctx) => {
      const [cluster, facts, allocation] = await Promise.all([
        ctx.services.get(ClusterRegistry).get(c.id),
        ctx.clusterFacts.load(c.id).catch(() => null),
        ctx.loader<string, number>('cluster-allocated', null, (ids) => ctx.services.get(QuotaStore).allocationsByClusterIds(ids).then((rows) => rows.map((r) => r.allocatedConnections))).load(c.id),
      ]);
      return facts ? ctx.services.get(CapacityPlanner).room(cluster, allocation, facts) : null;
    },
  }),
}));
