import { PoolSync, type PoolDrift, type ReconcileReport } from '../pool-sync.js';
import { builder } from '../../../graphql/builder.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const PoolMismatchRef = builder.objectRef<PoolDrift['mismatched'][number]>('PoolMismatch').implement({
  fields: (t) => ({ name: t.exposeString('name'), differences: t.exposeStringList('differences') }),
});

const PoolReconciliationRef = builder.objectRef<ReconcileReport>('PoolReconciliation').implement({
  description: 'What the reconciler found in the pooler and what it did.',
  fields: (t) => ({
    pooler: t.exposeString('pooler'),
    reachable: t.exposeBoolean('reachable'),
    missing: t.stringList({ description: 'Tenant pools the pooler did not have.', resolve: (r) => r.found.missing }),
    orphaned: t.stringList({ description: 'Pools the pooler had that belong to no active tenant.', resolve: (r) => r.found.orphaned }),
    mismatched: t.field({ type: [PoolMismatchRef], resolve: (r) => r.found.mismatched }),
    actions: t.exposeStringList('actions'),
    outcome: t.exposeString('outcome', { description: 'IN_SYNC, PENDING (pooler unreachable) or ERROR.' }),
    error: t.exposeString('error', { nullable: true }),
  }),
});

const ReconcilePoolsInput = builder.inputType('ReconcilePoolsInput', {
  fields: (t) => ({ reason: t.string({ required: false }) }),
});

builder.mutationField('reconcilePools', (t) =>
  t.field({
    type: builder.objectRef<Payload<{ report: ReconcileReport }>>('ReconcilePoolsPayload').implement({
      fields: (p) => ({
        report: p.field({ type: PoolReconciliationRef, nullable: true, resolve: (x) => x.report ?? null }),
        userErrors: p.field({ type: [UserErrorRef], resolve: (x) => x.userErrors }),
      }),
    }),
    description: 'Compares the active tenants with the pooler now, repairs missing, orphaned and resized pools, and reports.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: ReconcilePoolsInput, required: false }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors(input, async () => ({ report: await ctx.services.get(PoolSync).reconcilePools(ctx.op, input?.reason ?? null) })),
  }),
);
