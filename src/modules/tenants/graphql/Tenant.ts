import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { ClusterStore } from '../../clusters/index.js';
import { ClusterRef } from '../../clusters/graphql/index.js';
import { TenantStatus, TenantStore, tenantCursorValue, type ListedTenant, type Tenant } from '../tenant-store.js';
import { builder } from '../../../graphql/builder.js';
import { decodeCursor, encodeCursor } from '../../../graphql/connection-cursor.js';
import { isUuid } from '../../../graphql/ids.js';
import { pageOptions } from '../../../graphql/pagination.js';

const TenantStatusEnum = builder.enumType('TenantStatus', { values: Object.values(TenantStatus) });

export const TenantRef = builder.objectRef<Tenant>('Tenant');

const ProvisioningStateRef = builder.objectRef<Tenant>('ProvisioningState').implement({
  description: 'Where the provisioning state machine stands for a tenant.',
  fields: (t) => ({
    lastCompletedStep: t.exposeString('provisionStep', { nullable: true }),
    failedStep: t.exposeString('failedStep', { nullable: true }),
    error: t.exposeString('lastError', { nullable: true }),
    templateName: t.exposeString('templateName'),
    templateVersion: t.exposeString('templateVersion'),
  }),
});

// Tenant.quota is the quotas module's, Tenant.schemaVersion(s) the templates module's (their graphql/);
// Tenant.auditEvents is in tenantFieldsOnOthers.ts.
builder.node(TenantRef, {
  description: 'A customer with its own database and role on a managed cluster.',
  id: { resolve: (tenant) => tenant.id },
  // A tenant key gets null for every tenant but its own: never an error that would confirm one exists.
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.get(TenantStore).byIds(ids.filter(isUuid));
    return ids.map((id) => rows.find((r) => r?.id === id && ctx.canSee(r)) ?? null);
  },
  fields: (t) => ({
    slug: t.exposeString('slug'),
    displayName: t.exposeString('displayName'),
    status: t.field({ type: TenantStatusEnum, resolve: (tenant) => tenant.status }),
    databaseName: t.exposeString('databaseName'),
    roleName: t.exposeString('roleName'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    deprovisionedAt: t.expose('deprovisionedAt', { type: 'DateTime', nullable: true }),
    securedAt: t.expose('securedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When its database came under the control plane\'s ownership (README, "Security"); null for a tenant provisioned before, until the SECURE_TENANTS operation reaches it.',
    }),
    provisioning: t.field({ type: ProvisioningStateRef, resolve: (tenant) => tenant }),
    cluster: t.loadable({
      type: ClusterRef,
      load: (ids: string[], ctx) => ctx.services.get(ClusterStore).byIds(ids).then((rows) => rows.map((r) => r ?? new Error('cluster not found'))),
      resolve: (tenant) => tenant.clusterId,
    }),
  }),
});

const TenantOrderFieldEnum = builder.enumType('TenantOrderField', {
  values: {
    SLUG: {},
    DISPLAY_NAME: {},
    CREATED_AT: {},
    USAGE_PERCENT: { description: 'By the latest usage sample (DESC: closest to their limit first); lists sampled (ACTIVE) tenants.' },
  },
});
const OrderDirectionEnum = builder.enumType('OrderDirection', { values: ['ASC', 'DESC'] as const });

const TenantOrder = builder.inputType('TenantOrder', {
  fields: (t) => ({
    field: t.field({ type: TenantOrderFieldEnum, required: true }),
    direction: t.field({ type: OrderDirectionEnum, defaultValue: 'ASC' }),
  }),
});

const TenantFilter = builder.inputType('TenantFilter', {
  fields: (t) => ({
    status: t.field({ type: [TenantStatusEnum], required: false, description: 'Default: every status but DEPROVISIONED.' }),
    search: t.string({ required: false, description: 'Part of the slug or display name, any case.' }),
    clusterId: t.id({ required: false }),
  }),
});

builder.queryFields((t) => ({
  tenants: t.connection({
    type: TenantRef,
    description: 'Tenants the caller may see (a tenant key: just its own), paginated.',
    args: {
      filter: t.arg({ type: TenantFilter }),
      orderBy: t.arg({ type: TenantOrder }),
    },
    resolve: (_, args, ctx) => {
      const field = args.orderBy?.field ?? 'SLUG';
      const direction = args.orderBy?.direction ?? 'ASC';
      return resolveCursorConnection(
        { args, toCursor: (tenant: ListedTenant) => encodeCursor([tenantCursorValue(tenant, field), tenant.id]), ...pageOptions(args, ctx.config) },
        ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
          ctx.services.get(TenantStore).list(ctx.viewer!, {
            filter: args.filter ? { ...args.filter, clusterId: args.filter.clusterId?.toString() } : null,
            field,
            direction,
            after: decodeCursor<[string, string]>(after, 2),
            before: decodeCursor<[string, string]>(before, 2),
            limit,
            inverted,
          }),
      );
    },
  }),
  tenant: t.field({
    type: TenantRef,
    nullable: true,
    description: 'One tenant by slug; null when it does not exist or the caller may not see it.',
    args: { slug: t.arg.string({ required: true }) },
    resolve: async (_, { slug }, ctx) => {
      const tenant = await ctx.services.get(TenantStore).bySlug(slug);
      return tenant && ctx.canSee(tenant) ? tenant : null;
    },
  }),
}));
