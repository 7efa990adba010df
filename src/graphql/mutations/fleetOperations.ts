import type { Operation } from '../../generated/prisma/client.js';
import { builder } from '../builder.js';
import { OperationRef } from '../nodes/Operation.js';
import { UserErrorRef, withUserErrors, type Payload } from '../user-errors.js';

const FleetOperationPayload = builder.objectRef<Payload<{ operation: Operation }>>('FleetOperationPayload').implement({
  fields: (t) => ({
    operation: t.field({ type: OperationRef, nullable: true, description: 'Started; watch it with the operation(id) subscription.', resolve: (p) => p.operation ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

const UpgradeAllTenantSchemasInput = builder.inputType('UpgradeAllTenantSchemasInput', {
  fields: (t) => ({
    template: t.string({ required: false, description: 'The tenants of this template (default "default").' }),
    targetVersion: t.string({ required: false, description: 'Default: each tenant\'s newest version of its major.' }),
    concurrency: t.int({ required: false, description: 'Tenants at once, 1 to 16 (default 4).' }),
    canarySize: t.int({ required: false, description: 'Tenants that go first; if one fails the operation stops (default 3).' }),
  }),
});

const UpdateAllTenantExtensionsInput = builder.inputType('UpdateAllTenantExtensionsInput', {
  fields: (t) => ({
    template: t.string({ required: false }),
    concurrency: t.int({ required: false }),
    canarySize: t.int({ required: false }),
  }),
});

builder.mutationField('upgradeAllTenantSchemas', (t) =>
  t.field({
    type: FleetOperationPayload,
    description: 'Starts an operation that upgrades every active tenant of a template, canary first.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpgradeAllTenantSchemasInput, required: false }) },
    resolve: (_, { input }, ctx) => withUserErrors(input, async () => ({ operation: await ctx.deps.operations.start(ctx.op, { kind: 'UPGRADE_SCHEMAS', ...input }) })),
  }),
);

builder.mutationField('updateAllTenantExtensions', (t) =>
  t.field({
    type: FleetOperationPayload,
    description: 'Starts an operation that runs updateTenantExtensions on every active tenant of a template, canary first.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateAllTenantExtensionsInput, required: false }) },
    resolve: (_, { input }, ctx) => withUserErrors(input, async () => ({ operation: await ctx.deps.operations.start(ctx.op, { kind: 'UPDATE_EXTENSIONS', ...input }) })),
  }),
);

builder.mutationField('secureAllTenants', (t) =>
  t.field({
    type: FleetOperationPayload,
    description:
      'Starts an operation that brings every tenant provisioned before Tenantry owned tenant databases under the ownership model ' +
      '(README, "Security"). A server starts one by itself when it finds such tenants.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: builder.inputType('SecureAllTenantsInput', { fields: (f) => ({ concurrency: f.int({ required: false }) }) }), required: false }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors(input ?? {}, async () => ({ operation: await ctx.deps.operations.start(ctx.op, { kind: 'SECURE_TENANTS', concurrency: input?.concurrency, canarySize: 0 }) })),
  }),
);
