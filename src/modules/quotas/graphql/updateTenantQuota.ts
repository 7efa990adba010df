import type { Pool, Quota, QuotaChange, Tenant } from '../../../generated/prisma/client.js';
import { updateTenantQuota, type UpdateTenantQuotaResult } from '../update-tenant-quota.js';
import { builder } from '../../../graphql/builder.js';
import { PoolRef } from '../../pools/graphql/Pool.js';
import { QuotaChangeRef, QuotaRef } from './Quota.js';
import { TenantRef } from '../../tenants/graphql/Tenant.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const UpdateTenantQuotaInput = builder.inputType('UpdateTenantQuotaInput', {
  fields: (t) => ({
    slug: t.string({ required: true }),
    maxConnections: t.int({ required: true, description: 'Within QUOTA_MIN..QUOTA_MAX and the cluster\'s capacity.' }),
    reason: t.string({ required: false, description: 'Kept in the quota history and the audit trail.' }),
    terminateExcess: t.boolean({
      required: false,
      defaultValue: false,
      description: 'When lowering below the sessions the tenant holds: end the newest ones (PostgreSQL never disconnects them itself).',
    }),
  }),
});

const UpdateTenantQuotaPayload = builder.objectRef<Payload<UpdateTenantQuotaResult>>('UpdateTenantQuotaPayload').implement({
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, resolve: (p) => (p.tenant as Tenant | undefined) ?? null }),
    quota: t.field({ type: QuotaRef, nullable: true, resolve: (p) => (p.quota as Quota | undefined) ?? null }),
    change: t.field({
      type: QuotaChangeRef,
      nullable: true,
      description: 'The recorded change; null when the quota already had this value.',
      resolve: (p) => (p.change as QuotaChange | null | undefined) ?? null,
    }),
    connectionsOverLimit: t.int({
      description: 'Sessions the tenant held beyond the new limit when it was applied.',
      resolve: (p) => p.connectionsOverLimit ?? 0,
    }),
    terminatedPids: t.intList({ description: 'Sessions ended because of terminateExcess.', resolve: (p) => p.terminatedPids ?? [] }),
    pool: t.field({
      type: PoolRef,
      nullable: true,
      description: 'The pool as recorded when the call returned: the pooler is updated in the background (PENDING until it is; the reconciler finishes it if the pooler is down).',
      resolve: (p) => (p.pool as Pool | null | undefined) ?? null,
    }),
    warnings: t.stringList({
      description: 'What is recorded but not done yet, and will be: e.g. PostgreSQL was unreachable and the reconciler applies the limit.',
      resolve: (p) => p.warnings ?? [],
    }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('updateTenantQuota', (t) =>
  t.field({
    type: UpdateTenantQuotaPayload,
    description: 'Sets a tenant\'s connection quota in PostgreSQL (role and database CONNECTION LIMIT), the control database and the pooler.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateTenantQuotaInput, required: true }) },
    resolve: (_, { input }, ctx) => withUserErrors(input, () => updateTenantQuota(ctx.deps, ctx.op, input, ctx.canSee)),
  }),
);
