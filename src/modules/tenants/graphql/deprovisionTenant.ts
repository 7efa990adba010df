import { TenantDeprovisioning } from '../deprovision-tenant.js';
import type { Tenant } from '../tenant-store.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from './Tenant.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const DeprovisionTenantInput = builder.inputType('DeprovisionTenantInput', {
  fields: (t) => ({
    slug: t.string({ required: true }),
    confirm: t.string({ required: true, description: 'Must repeat the slug.' }),
  }),
});

const DeprovisionTenantPayload = builder.objectRef<Payload<{ tenant: Tenant }>>('DeprovisionTenantPayload').implement({
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, resolve: (p) => p.tenant ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('deprovisionTenant', (t) =>
  t.field({
    type: DeprovisionTenantPayload,
    description: 'Ends the tenant\'s sessions and drops its database and role. The tenant row, its history and audit trail stay.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: DeprovisionTenantInput, required: true }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors(input, async () => ({
        tenant: await ctx.services.get(TenantDeprovisioning).deprovisionTenant(ctx.op, input, ctx.canSee),
      })),
  }),
);
