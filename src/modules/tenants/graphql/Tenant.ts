import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { ClusterStore } from '../../clusters/index.js';
import { ClusterRef } from '../../clusters/graphql/index.js';
import { type TenantStatus, TenantStore, tenantCursorValue, type ListedTenant, type Tenant } from '../tenant-store.js';
import { builder } from '../../../graphql/builder.js';
import { decodeCursor, encodeCursor } from '../../../graphql/connection-cursor.js';
import { describedValues } from '../../../graphql/enum-values.js';
import { isUuid } from '../../../graphql/ids.js';
import { pageOptions } from '../../../graphql/pagination.js';
import { countedConnection, withTotalCount } from '../../../graphql/total-count.js';

const STATUS_DESCRIPTIONS: Record<TenantStatus, string> = {
  PROVISIONING: 'Being created (or its creation stopped mid-way and recovery resumes it).',
  ACTIVE: 'Its role can log in; sampled, pooled and checked.',
  SUSPENDED: 'Its role may not log in and it has no pool; data, quota and credentials stay (resumeTenant).',
  FAILED: 'Provisioning failed and what it created was dropped; provisionTenant with the same slug tries again.',
  DEPROVISIONING: 'Its database and role are being dropped.',
  DEPROVISIONED: 'Its database and role are gone; the record and its audit events stay.',
};
const TenantStatusEnum = builder.enumType('TenantStatus', {
  description: 'Where a tenant is in its life.',
  values: describedValues(STATUS_DESCRIPTIONS),
});

export const TenantRef = builder.objectRef<Tenant>('Tenant');

// Its steps (lastCompletedStep, failedStep) are the provisioning module's, which knows them (provisioning/graphql).
export const ProvisioningStateRef = builder.objectRef<Tenant>('ProvisioningState').implement({
  description: 'Where the provisioning state machine stands for a tenant.',
  fields: (t) => ({
    error: t.exposeString('lastError', { nullable: true, description: 'Why the last attempt failed; null when none has.' }),
    templateName: t.exposeString('templateName', { description: 'The schema template the tenant was provisioned from.' }),
    templateVersion: t.exposeString('templateVersion', { description: 'The template version it was provisioned with (Tenant.schemaVersion says what it runs now).' }),
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
    slug: t.exposeString('slug', { description: 'Unique, URL-safe name; what mutations and filters take.' }),
    displayName: t.exposeString('displayName', { description: 'Human-readable name.' }),
    status: t.field({ type: TenantStatusEnum, description: 'Where the tenant is in its life.', resolve: (tenant) => tenant.status }),
    databaseName: t.exposeString('databaseName', { description: 'Its PostgreSQL database on the cluster.' }),
    roleName: t.exposeString('roleName', { description: 'Its PostgreSQL login role, owner of its schema.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was first provisioned.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When its record last changed.' }),
    deprovisionedAt: t.expose('deprovisionedAt', { type: 'DateTime', nullable: true, description: 'When it was deprovisioned; null while it is not.' }),
    securedAt: t.expose('securedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When its database came under the control plane\'s ownership (docs/security.md); null for a tenant provisioned before, until the SECURE_TENANTS operation reaches it.',
    }),
    provisioning: t.field({ type: ProvisioningStateRef, description: 'How it was provisioned, and the last failure.', resolve: (tenant) => tenant }),
    cluster: t.loadable({
      type: ClusterRef,
      description: 'The PostgreSQL cluster that holds its database.',
      load: (ids: string[], ctx) => ctx.services.get(ClusterStore).byIds(ids).then((rows) => rows.map((r) => r ?? new Error('cluster not found'))),
      resolve: (tenant) => tenant.clusterId,
    }),
  }),
});

const TenantOrderFieldEnum = builder.enumType('TenantOrderField', {
  description: 'What Query.tenants sorts by (ties broken by id).',
  values: {
    SLUG: { description: 'By slug.' },
    DISPLAY_NAME: { description: 'By display name.' },
    CREATED_AT: { description: 'By when the tenant was created.' },
    USAGE_PERCENT: { description: 'By the latest usage sample (DESC: closest to their limit first); lists sampled (ACTIVE) tenants.' },
  },
});
const OrderDirectionEnum = builder.enumType('OrderDirection', {
  description: 'Sort order.',
  values: { ASC: { description: 'Smallest (or earliest, or A) first.' }, DESC: { description: 'Largest (or latest, or Z) first.' } },
});

const TenantOrder = builder.inputType('TenantOrder', {
  description: 'How Query.tenants sorts.',
  fields: (t) => ({
    field: t.field({ type: TenantOrderFieldEnum, required: true, description: 'What to sort by.' }),
    direction: t.field({ type: OrderDirectionEnum, defaultValue: 'ASC', description: 'Ascending (default) or descending.' }),
  }),
});

const TenantFilter = builder.inputType('TenantFilter', {
  description: 'Which tenants Query.tenants lists; the conditions given must all hold.',
  fields: (t) => ({
    status: t.field({ type: [TenantStatusEnum], required: false, description: 'Default: every status but DEPROVISIONED.' }),
    search: t.string({ required: false, description: 'Part of the slug or display name, any case.' }),
    clusterId: t.id({ required: false, description: 'Only tenants on this cluster (its id).' }),
    usagePercentAbove: t.float({
      required: false,
      description: 'Only ACTIVE tenants whose latest usage sample is above this percent of their quota (e.g. 80 for the band above 80 %).',
    }),
  }),
});

/** Query.tenants' page type; other modules may return it too. */
export const TenantConnectionRef = countedConnection(TenantRef, 'Tenant', 'tenants');

builder.queryFields((t) => ({
  tenants: t.connection({
    type: TenantRef,
    description: 'Tenants the caller may see (a tenant key: just its own), paginated.',
    args: {
      filter: t.arg({ type: TenantFilter, description: 'Which tenants (default: every status but DEPROVISIONED).' }),
      orderBy: t.arg({ type: TenantOrder, description: 'Sort order (default: by slug, ascending).' }),
    },
    resolve: async (_, args, ctx) => {
      const field = args.orderBy?.field ?? 'SLUG';
      const direction = args.orderBy?.direction ?? 'ASC';
      const filter = args.filter ? { ...args.filter, clusterId: args.filter.clusterId?.toString() } : null;
      const page = await resolveCursorConnection(
        { args, toCursor: (tenant: ListedTenant) => encodeCursor([tenantCursorValue(tenant, field), tenant.id]), ...pageOptions(args, ctx.config) },
        ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
          ctx.services.get(TenantStore).list(ctx.viewer!, {
            filter,
            field,
            direction,
            after: decodeCursor<[string, string]>(after, 2),
            before: decodeCursor<[string, string]>(before, 2),
            limit,
            inverted,
          }),
      );
      return withTotalCount(page, () => ctx.services.get(TenantStore).count(ctx.viewer!, filter, field));
    },
  }, TenantConnectionRef),
  tenant: t.field({
    type: TenantRef,
    nullable: true,
    description: 'One tenant by slug; null when it does not exist or the caller may not see it.',
    args: { slug: t.arg.string({ required: true, description: 'The tenant\'s slug.' }) },
    resolve: async (_, { slug }, ctx) => {
      const tenant = await ctx.services.get(TenantStore).bySlug(slug);
      return tenant && ctx.canSee(tenant) ? tenant : null;
    },
  }),
}));
