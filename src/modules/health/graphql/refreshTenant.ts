import { TenantRefresh, type TenantRefreshResult } from '../refresh-tenant.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from '../../tenants/graphql/index.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const RefreshTenantInput = builder.inputType('RefreshTenantInput', {
  description: 'Which tenant to take a fresh look at.',
  fields: (t) => ({ slug: t.string({ required: true, description: 'The tenant.' }) }),
});

const RefreshTenantPayload = builder.objectRef<Payload<TenantRefreshResult>>('RefreshTenantPayload').implement({
  description: 'The result of refreshTenant.',
  fields: (t) => ({
    tenant: t.field({
      type: TenantRef,
      nullable: true,
      description: 'The tenant with fresh records: its extensions, schemaVersion and inventory now say what is in its database.',
      resolve: (p) => p.tenant ?? null,
    }),
    drift: t.stringList({ description: 'What differed from the records (they follow the database now).', resolve: (p) => p.finding?.drift ?? [] }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('refreshTenant', (t) =>
  t.field({
    type: RefreshTenantPayload,
    description: 'Admins, or the tenant\'s own TENANT_ADMIN key. Runs the inventory for one tenant now (the periodic pass runs every INVENTORY_INTERVAL_MS): audited as tenant.refreshed.',
    authScopes: { admin: true, tenantAdmin: true },
    args: { input: t.arg({ type: RefreshTenantInput, required: true, description: 'The tenant.' }) },
    resolve: (_, { input }, ctx) => withUserErrors('refreshTenant', input, () => ctx.services.get(TenantRefresh).refreshTenant(ctx.op, input, ctx.canSee)),
  }),
);
