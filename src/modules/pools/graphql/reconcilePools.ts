import { PoolSync, type PoolDrift, type ReconcileReport } from '../pool-sync.js';
import { builder } from '../../../graphql/builder.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const PoolMismatchRef = builder.objectRef<PoolDrift['mismatched'][number]>('PoolMismatch').implement({
  description: 'A pool the pooler runs differently from its record.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The pool\'s name (the tenant\'s database name).' }),
    differences: t.exposeStringList('differences', { description: 'What differs, e.g. "pool_size is 5, expected 10".' }),
  }),
});

const PoolerKindEnum = builder.enumType('PoolerKind', {
  description: 'The connection pooler Tenantry manages (POOLER).',
  values: {
    PGBOUNCER: { value: 'pgbouncer', description: 'PgBouncer.' },
    NONE: { value: 'none', description: 'No pooler (POOLER=none): there is nothing to reconcile.' },
  } as const,
});

const PoolReconciliationOutcomeEnum = builder.enumType('PoolReconciliationOutcome', {
  description: 'How a reconciliation ended.',
  values: {
    IN_SYNC: { description: 'The pooler runs every active tenant\'s pool as wanted (also with no pooler).' },
    PENDING: { description: 'The pooler was unreachable: the changes wait, and the reconciler retries.' },
    ERROR: { description: 'The pooler refused the configuration or it could not be written: see error.' },
  } as const,
});

const PoolReconciliationRef = builder.objectRef<ReconcileReport>('PoolReconciliation').implement({
  description: 'What the reconciler found in the pooler and what it did.',
  fields: (t) => ({
    pooler: t.field({ type: PoolerKindEnum, description: 'The pooler reconciled (POOLER).', resolve: (r) => r.pooler }),
    reachable: t.exposeBoolean('reachable', { description: 'Whether the pooler answered.' }),
    missing: t.stringList({ description: 'Tenant pools the pooler did not have.', resolve: (r) => r.found.missing }),
    orphaned: t.stringList({ description: 'Pools the pooler had that belong to no active tenant.', resolve: (r) => r.found.orphaned }),
    mismatched: t.field({ type: [PoolMismatchRef], description: 'Pools the pooler ran differently from their records.', resolve: (r) => r.found.mismatched }),
    actions: t.exposeStringList('actions', { description: 'What the reconciler did, one line each (empty when nothing was needed).' }),
    outcome: t.field({ type: PoolReconciliationOutcomeEnum, description: 'How it ended.', resolve: (r) => r.outcome }),
    error: t.exposeString('error', { nullable: true, description: 'Why the pooler could not be reconciled; null when it was.' }),
  }),
});

const ReconcilePoolsInput = builder.inputType('ReconcilePoolsInput', {
  description: 'Why reconcile now.',
  fields: (t) => ({ reason: t.string({ required: false, description: 'Why, for the audit log.' }) }),
});

builder.mutationField('reconcilePools', (t) =>
  t.field({
    type: builder.objectRef<Payload<{ report: ReconcileReport }>>('ReconcilePoolsPayload').implement({
      description: 'The result of reconcilePools.',
      fields: (p) => ({
        report: p.field({ type: PoolReconciliationRef, nullable: true, description: 'What was found and done; null when the mutation was refused.', resolve: (x) => x.report ?? null }),
        userErrors: p.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (x) => x.userErrors }),
      }),
    }),
    description: 'Admins only. Compares the active tenants with the pooler now, repairs missing, orphaned and resized pools, and reports.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: ReconcilePoolsInput, required: false, description: 'A reason for the audit log (optional).' }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors('reconcilePools', input, async () => ({ report: await ctx.services.get(PoolSync).reconcilePools(ctx.op, input?.reason ?? null) })),
  }),
);
