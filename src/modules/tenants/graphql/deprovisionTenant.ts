import { TenantDeprovisioning } from '../deprovision-tenant.js';
import type { Tenant } from '../tenant-store.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from './Tenant.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const DeprovisionTenantInput = builder.inputType('DeprovisionTenantInput', {
  description: 'Which tenant to deprovision, confirmed.',
  fields: (t) => ({
    slug: t.string({ required: true, description: 'The tenant to deprovision.' }),
    confirm: t.string({ required: true, description: 'Must repeat the slug.' }),
  }),
});

const DeprovisionTenantPayload = builder.objectRef<Payload<{ tenant: Tenant }>>('DeprovisionTenantPayload').implement({
  description: 'The result of deprovisionTenant.',
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, description: 'The tenant, now DEPROVISIONED; null when the mutation was refused.', resolve: (p) => p.tenant ?? null }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('deprovisionTenant', (t) =>
  t.field({
    type: DeprovisionTenantPayload,
    description: 'Admins only. Ends the tenant\'s sessions and drops its database and role. The tenant row, its history and audit trail stay.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: DeprovisionTenantInput, required: true, description: 'Which tenant, and the slug again to confirm.' }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors('deprovisionTenant', input, async () => ({
        tenant: await ctx.services.get(TenantDeprovisioning).deprovisionTenant(ctx.op, input, ctx.canSee),
      })),
  }),
);
