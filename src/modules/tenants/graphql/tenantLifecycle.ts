import { TenantLifecycle } from '../tenant-lifecycle.js';
import type { Tenant } from '../tenant-store.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from './Tenant.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const TenantPayload = builder.objectRef<Payload<{ tenant: Tenant }>>('TenantPayload').implement({
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, resolve: (p) => p.tenant ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

const SuspendTenantInput = builder.inputType('SuspendTenantInput', {
  fields: (t) => ({
    slug: t.string({ required: true }),
    reason: t.string({ required: false }),
    terminateConnections: t.boolean({ required: false, defaultValue: true, description: 'End the tenant\'s open sessions (default true).' }),
  }),
});

builder.mutationField('suspendTenant', (t) =>
  t.field({
    type: TenantPayload,
    description: 'The tenant\'s role may no longer log in and its pool leaves the pooler; data, quota and credentials stay.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: SuspendTenantInput, required: true }) },
    resolve: (_, { input }, ctx) => withUserErrors(input, async () => ({ tenant: await ctx.services.get(TenantLifecycle).suspendTenant(ctx.op, input, ctx.canSee) })),
  }),
);

builder.mutationField('resumeTenant', (t) =>
  t.field({
    type: TenantPayload,
    authScopes: { admin: true },
    args: { input: t.arg({ type: builder.inputType('ResumeTenantInput', { fields: (f) => ({ slug: f.string({ required: true }) }) }), required: true }) },
    resolve: (_, { input }, ctx) => withUserErrors(input, async () => ({ tenant: await ctx.services.get(TenantLifecycle).resumeTenant(ctx.op, input, ctx.canSee) })),
  }),
);

const RotateTenantCredentialsPayload = builder
  .objectRef<Payload<{ tenant: Tenant; connectionString: string; pooledConnectionString: string | null }>>('RotateTenantCredentialsPayload')
  .implement({
    fields: (t) => ({
      tenant: t.field({ type: TenantRef, nullable: true, resolve: (p) => p.tenant ?? null }),
      connectionString: t.string({ nullable: true, description: 'With the new password. Shown once.', resolve: (p) => p.connectionString ?? null }),
      pooledConnectionString: t.string({ nullable: true, description: 'Through the pooler; null with POOLER=none. Shown once.', resolve: (p) => p.pooledConnectionString ?? null }),
      userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
    }),
  });

builder.mutationField('rotateTenantCredentials', (t) =>
  t.field({
    type: RotateTenantCredentialsPayload,
    description: 'A new password for the tenant\'s role; the old one stops working, open sessions continue.',
    authScopes: { admin: true, tenantAdmin: true },
    args: {
      input: t.arg({
        type: builder.inputType('RotateTenantCredentialsInput', {
          fields: (f) => ({
            slug: f.string({ required: true }),
            idempotencyKey: f.string({
              required: false,
              description: 'With one, repeating the call (same key, within CREDENTIAL_HANDOFF_TTL_MS) returns the same credentials instead of rotating again.',
            }),
          }),
        }),
        required: true,
      }),
    },
    resolve: (_, { input }, ctx) => withUserErrors(input, () => ctx.services.get(TenantLifecycle).rotateTenantCredentials(ctx.op, input, ctx.canSee)),
  }),
);
