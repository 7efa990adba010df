import { TenantLifecycle } from '../tenant-lifecycle.js';
import type { Tenant } from '../tenant-store.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from './Tenant.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const TenantPayload = builder.objectRef<Payload<{ tenant: Tenant }>>('TenantPayload').implement({
  description: 'The result of suspendTenant or resumeTenant.',
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, description: 'The tenant as it is now; null when the mutation was refused.', resolve: (p) => p.tenant ?? null }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

const SuspendTenantInput = builder.inputType('SuspendTenantInput', {
  description: 'Which tenant to suspend, and why.',
  fields: (t) => ({
    slug: t.string({ required: true, description: 'The tenant to suspend.' }),
    reason: t.string({ required: false, description: 'Why, for the audit log (at most 500 characters).' }),
    terminateConnections: t.boolean({ required: false, defaultValue: true, description: 'End the tenant\'s open sessions (default true).' }),
  }),
});

builder.mutationField('suspendTenant', (t) =>
  t.field({
    type: TenantPayload,
    description: 'Admins only. The tenant\'s role may no longer log in and its pool leaves the pooler; data, quota and credentials stay.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: SuspendTenantInput, required: true, description: 'Which tenant, and why.' }) },
    resolve: (_, { input }, ctx) => withUserErrors('suspendTenant', input, async () => ({ tenant: await ctx.services.get(TenantLifecycle).suspendTenant(ctx.op, input, ctx.canSee) })),
  }),
);

builder.mutationField('resumeTenant', (t) =>
  t.field({
    type: TenantPayload,
    description: 'Admins only. Lets a SUSPENDED tenant\'s role (and its read-only credentials) log in again and puts its pool back in the pooler.',
    authScopes: { admin: true },
    args: {
      input: t.arg({
        type: builder.inputType('ResumeTenantInput', {
          description: 'Which tenant to resume.',
          fields: (f) => ({ slug: f.string({ required: true, description: 'The tenant to resume.' }) }),
        }),
        required: true,
        description: 'Which tenant.',
      }),
    },
    resolve: (_, { input }, ctx) => withUserErrors('resumeTenant', input, async () => ({ tenant: await ctx.services.get(TenantLifecycle).resumeTenant(ctx.op, input, ctx.canSee) })),
  }),
);

const RotateTenantCredentialsPayload = builder
  .objectRef<Payload<{ tenant: Tenant; connectionString: string; pooledConnectionString: string | null }>>('RotateTenantCredentialsPayload')
  .implement({
    description: 'The result of rotateTenantCredentials: the new connection strings, shown once.',
    fields: (t) => ({
      tenant: t.field({ type: TenantRef, nullable: true, description: 'The tenant; null when the rotation was refused.', resolve: (p) => p.tenant ?? null }),
      connectionString: t.string({ nullable: true, description: 'With the new password. Shown once.', resolve: (p) => p.connectionString ?? null }),
      pooledConnectionString: t.string({ nullable: true, description: 'Through the pooler; null with POOLER=none. Shown once.', resolve: (p) => p.pooledConnectionString ?? null }),
      userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
    }),
  });

builder.mutationField('rotateTenantCredentials', (t) =>
  t.field({
    type: RotateTenantCredentialsPayload,
    description: 'Admins, or the tenant\'s own TENANT_ADMIN key. A new password for the tenant\'s role; the old one stops working, open sessions continue.',
    authScopes: { admin: true, tenantAdmin: true },
    args: {
      input: t.arg({
        type: builder.inputType('RotateTenantCredentialsInput', {
          description: 'Which tenant gets a new password.',
          fields: (f) => ({
            slug: f.string({ required: true, description: 'The tenant whose role gets a new password.' }),
            idempotencyKey: f.string({
              required: false,
              description: 'With one, repeating the call (same key, within CREDENTIAL_HANDOFF_TTL_MS) returns the same credentials instead of rotating again.',
            }),
          }),
        }),
        required: true,
        description: 'Which tenant, and an optional idempotency key.',
      }),
    },
    resolve: (_, { input }, ctx) => withUserErrors('rotateTenantCredentials', input, () => ctx.services.get(TenantLifecycle).rotateTenantCredentials(ctx.op, input, ctx.canSee)),
  }),
);
