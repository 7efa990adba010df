import { QuotaUpdates, type UpdateTenantQuotaResult } from '../update-tenant-quota.js';
import { builder } from '../../../graphql/builder.js';
import { QuotaChangeRef, QuotaRef } from './Quota.js';
import { TenantRef } from '../../tenants/graphql/index.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const UpdateTenantQuotaInput = builder.inputType('UpdateTenantQuotaInput', {
  description: 'The tenant and its new quota.',
  fields: (t) => ({
    slug: t.string({ required: true, description: 'The tenant.' }),
    maxConnections: t.int({ required: true, description: 'Within QUOTA_MIN..QUOTA_MAX and the cluster\'s capacity.' }),
    reason: t.string({ required: false, description: 'Kept in the quota history and the audit trail.' }),
    terminateExcess: t.boolean({
      required: false,
      defaultValue: false,
      description: 'When lowering below the sessions the tenant holds: end the newest ones, read-only sessions included (PostgreSQL never disconnects them itself).',
    }),
  }),
});

/** The pools module adds its `pool` field (builder.objectField). */
export const UpdateTenantQuotaPayloadRef = builder.objectRef<Payload<UpdateTenantQuotaResult>>('UpdateTenantQuotaPayload').implement({
  description: 'The result of updateTenantQuota.',
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, description: 'The tenant; null when the mutation was refused.', resolve: (p) => p.tenant ?? null }),
    quota: t.field({ type: QuotaRef, nullable: true, description: 'The quota now; null when the mutation was refused.', resolve: (p) => p.quota ?? null }),
    change: t.field({
      type: QuotaChangeRef,
      nullable: true,
      description: 'The recorded change; null when the quota already had this value.',
      resolve: (p) => p.change ?? null,
    }),
    connectionsOverLimit: t.int({
      description: 'Sessions the tenant held (read-only sessions included) beyond the new limit when it was applied.',
      resolve: (p) => p.connectionsOverLimit ?? 0,
    }),
    terminatedPids: t.intList({ description: 'Sessions ended because of terminateExcess.', resolve: (p) => p.terminatedPids ?? [] }),
    warnings: t.stringList({
      description: 'What is recorded but not done yet, and will be: e.g. PostgreSQL was unreachable and the reconciler applies the limit.',
      resolve: (p) => p.warnings ?? [],
    }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('updateTenantQuota', (t) =>
  t.field({
    type: UpdateTenantQuotaPayloadRef,
    description: 'Admins only. Sets a tenant\'s connection quota in PostgreSQL (role and database CONNECTION LIMIT), the control database and the pooler.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateTenantQuotaInput, required: true, description: 'The tenant, the new quota, and what to do with sessions beyond it.' }) },
    resolve: (_, { input }, ctx) => withUserErrors('updateTenantQuota', input, () => ctx.services.get(QuotaUpdates).updateTenantQuota(ctx.op, input, ctx.canSee)),
  }),
);
