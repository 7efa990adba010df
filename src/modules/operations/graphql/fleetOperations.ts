import { FleetOperations, type Operation } from '../fleet-operations.js';
import { builder } from '../../../graphql/builder.js';
import { OperationRef } from './Operation.js';
import { localIdOf } from '../../../graphql/ids.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const FleetOperationPayload = builder.objectRef<Payload<{ operation: Operation }>>('FleetOperationPayload').implement({
  description: 'The result of a fleet mutation: the operation it started.',
  fields: (t) => ({
    operation: t.field({ type: OperationRef, nullable: true, description: 'Started; watch it with the operation(id) subscription.', resolve: (p) => p.operation ?? null }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

const CANARY_HELP =
  'Canaries go first; the rest runs once canarySize of them succeeded. A canary that fails because of its own objects, data or sessions ' +
  '(failureCause TENANT: something the step creates already exists, a lock its sessions hold, its data against a new constraint, ' +
  'deferrable constraints, code that changed the step runner) is recorded FAILED and the next tenant takes its place; one that fails ' +
  'because of the step (failureCause STEP) stops the operation (FAILED, the rest SKIPPED). ' +
  'Without a pick, the canaries are the first tenants with work to do by slug, except that tenants whose latest result in an operation ' +
  'of the same kind FAILED come last (they would most likely fail again for their own reasons).';

const UpgradeAllTenantSchemasInput = builder.inputType('UpgradeAllTenantSchemasInput', {
  description: CANARY_HELP,
  fields: (t) => ({
    template: t.string({ required: false, description: 'The tenants of this template (default "default").' }),
    targetVersion: t.string({ required: false, description: 'Default: each tenant\'s newest version of its major.' }),
    concurrency: t.int({ required: false, description: 'Tenants at once, 1 to 16 (default 4).' }),
    canarySize: t.int({ required: false, description: 'Canaries that must succeed before the rest runs (default: as many as picked in canary, else 3; 0: none).' }),
    canary: t.stringList({ required: false, description: 'Slugs of the tenants to use as canaries, first and in this order (each must be one this operation runs on).' }),
    exclude: t.stringList({ required: false, description: 'Slugs of the tenants to leave out of this operation (each must be one it would run on).' }),
  }),
});

const UpdateAllTenantExtensionsInput = builder.inputType('UpdateAllTenantExtensionsInput', {
  description: CANARY_HELP,
  fields: (t) => ({
    template: t.string({ required: false, description: 'The tenants of this template (default "default").' }),
    concurrency: t.int({ required: false, description: 'Tenants at once, 1 to 16 (default 4).' }),
    canarySize: t.int({ required: false, description: 'As for upgradeAllTenantSchemas.' }),
    canary: t.stringList({ required: false, description: 'As for upgradeAllTenantSchemas.' }),
    exclude: t.stringList({ required: false, description: 'As for upgradeAllTenantSchemas.' }),
  }),
});

builder.mutationField('upgradeAllTenantSchemas', (t) =>
  t.field({
    type: FleetOperationPayload,
    description: 'Admins only. Starts an operation that upgrades every active tenant of a template, canary first.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpgradeAllTenantSchemasInput, required: false, description: 'Template, target, concurrency and canaries (all optional).' }) },
    resolve: (_, { input }, ctx) => withUserErrors('upgradeAllTenantSchemas', input, async () => ({ operation: await ctx.services.get(FleetOperations).start(ctx.op, { kind: 'UPGRADE_SCHEMAS', ...input }) })),
  }),
);

builder.mutationField('updateAllTenantExtensions', (t) =>
  t.field({
    type: FleetOperationPayload,
    description: 'Admins only. Starts an operation that runs updateTenantExtensions on every active tenant of a template, canary first.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateAllTenantExtensionsInput, required: false, description: 'Template, concurrency and canaries (all optional).' }) },
    resolve: (_, { input }, ctx) => withUserErrors('updateAllTenantExtensions', input, async () => ({ operation: await ctx.services.get(FleetOperations).start(ctx.op, { kind: 'UPDATE_EXTENSIONS', ...input }) })),
  }),
);

builder.mutationField('secureAllTenants', (t) =>
  t.field({
    type: FleetOperationPayload,
    description:
      'Admins only. Starts an operation that brings every tenant provisioned before Tenantry owned tenant databases under the ownership model ' +
      '(docs/security.md). A server starts one by itself when it finds such tenants.',
    authScopes: { admin: true },
    args: {
      input: t.arg({
        type: builder.inputType('SecureAllTenantsInput', {
          description: 'How to run secureAllTenants (it runs without canaries).',
          fields: (f) => ({ concurrency: f.int({ required: false, description: 'Tenants at once, 1 to 16 (default 4).' }) }),
        }),
        required: false,
        description: 'Concurrency (optional).',
      }),
    },
    resolve: (_, { input }, ctx) =>
      withUserErrors('secureAllTenants', input ?? {}, async () => ({ operation: await ctx.services.get(FleetOperations).start(ctx.op, { kind: 'SECURE_TENANTS', concurrency: input?.concurrency, canarySize: 0 }) })),
  }),
);

const MoveModeEnum = builder.enumType('DrainMoveMode', {
  description: 'How drainCluster moves each tenant (see moveTenant).',
  values: {
    ONLINE: { description: 'Logical replication: the tenant keeps serving; its pool pauses for seconds at the cutover.' },
    OFFLINE: { description: 'Dump and restore: the tenant is unavailable for the copy.' },
  } as const,
});

builder.mutationField('drainCluster', (t) =>
  t.field({
    type: FleetOperationPayload,
    description:
      'Admins only. Marks the cluster DRAINING (it takes no new tenants) and starts an operation that moves every tenant on it ' +
      'to a cluster placement picks (PLACEMENT_POLICY among the other ACTIVE clusters with room), canary first, with bounded concurrency; ' +
      'resumed by another server if this one stops. When it has SUCCEEDED the cluster is empty and removeCluster takes it away. ' +
      CANARY_HELP,
    authScopes: { admin: true },
    args: {
      input: t.arg({
        type: builder.inputType('DrainClusterInput', {
          description: 'The cluster, how its tenants move, and the operation\'s pace.',
          fields: (f) => ({
            id: f.id({ required: true, description: 'The cluster to empty.' }),
            mode: f.field({ type: MoveModeEnum, required: false, defaultValue: 'ONLINE', description: 'ONLINE (default) or OFFLINE.' }),
            concurrency: f.int({ required: false, description: 'Tenants moving at once, 1 to 16 (default 4).' }),
            canarySize: f.int({ required: false, description: 'Moves that must succeed before the rest runs (default: as many as picked in canary, else 3; 0: none).' }),
            canary: f.stringList({ required: false, description: 'Slugs of the tenants to move first, in this order.' }),
            exclude: f.stringList({ required: false, description: 'Slugs of tenants to leave on the cluster (then it is not empty at the end).' }),
          }),
        }),
        required: true,
        description: 'The cluster and the operation\'s settings.',
      }),
    },
    resolve: (_, { input }, ctx) =>
      withUserErrors('drainCluster', input, async () => {
        const { id, mode, ...pace } = input;
        const clusterId = localIdOf(String(id), 'Cluster');
        return { operation: await ctx.services.get(FleetOperations).start(ctx.op, { kind: 'DRAIN_CLUSTER', clusterId, mode: mode ?? 'ONLINE', ...pace }) };
      }),
  }),
);
