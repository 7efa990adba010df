import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { FleetOperations, OperationItemStatus, OperationKind, type Operation, type OperationItem, type OperationParams } from '../fleet-operations.js';
import { TenantStore } from '../../tenants/index.js';
import { builder } from '../../../graphql/builder.js';
import { isUuid } from '../../../graphql/ids.js';
import { assertPageSize, DEFAULT_PAGE_SIZE, pageOptions, pageSizeOf } from '../../../graphql/pagination.js';
import { TenantRef } from '../../tenants/graphql/index.js';

const OperationKindEnum = builder.enumType('OperationKind', { values: Object.values(OperationKind) });
const OperationStatusEnum = builder.enumType('OperationStatus', {
  values: {
    PENDING: {},
    RUNNING: {},
    SUCCEEDED: { description: 'Every tenant done without error.' },
    COMPLETED_WITH_ERRORS: { description: 'Every tenant tried; some failed (see results).' },
    FAILED: { description: 'A canary failed because of the step itself (not its own objects): the rest was not run.' },
  },
});
const OperationItemStatusEnum = builder.enumType('OperationResultStatus', { values: Object.values(OperationItemStatus) });
const OperationFailureCauseEnum = builder.enumType('OperationFailureCause', {
  description: 'Why a tenant\'s result FAILED.',
  values: {
    TENANT: {
      description:
        'The tenant\'s own objects, data or sessions were in the way (what the step creates already existed, a lock its sessions held, its data ' +
        'against a new constraint, deferrable constraints, code that changed the step runner, a state such as FAILED): not held against the step.',
    },
    STEP: { description: 'The step itself (or the server) failed: as a canary, this stops the operation.' },
  },
});

const OperationResultRef = builder.objectRef<OperationItem>('OperationResult').implement({
  description: 'What an operation did to one tenant.',
  fields: (t) => ({
    tenantSlug: t.exposeString('tenantSlug'),
    tenant: t.loadable({ type: TenantRef, nullable: true, load: (ids: string[], ctx) => ctx.services.get(TenantStore).byIds(ids), resolve: (i) => i.tenantId }),
    position: t.exposeInt('position'),
    status: t.field({ type: OperationItemStatusEnum, resolve: (i) => i.status }),
    message: t.exposeString('message', { nullable: true }),
    fromVersion: t.exposeString('fromVersion', { nullable: true }),
    toVersion: t.exposeString('toVersion', { nullable: true }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    canary: t.exposeBoolean('canary', { description: 'Run as one of the canaries (picked, chosen, or in place of one that failed for its own reasons).' }),
    failureCause: t.field({ type: OperationFailureCauseEnum, nullable: true, description: 'Why it FAILED; null otherwise.', resolve: (i) => i.failureCause }),
  }),
});

export const OperationRef = builder.objectRef<Operation>('Operation');

builder.node(OperationRef, {
  description: 'A fleet-wide operation (admins only): persisted, run with bounded concurrency after a canary, resumed after a restart.',
  id: { resolve: (o) => o.id },
  loadMany: async (ids, ctx) => {
    if (ctx.viewer?.role !== 'ADMIN') return ids.map(() => null);
    const rows = await ctx.services.get(FleetOperations).byIds(ids.filter(isUuid));
    return ids.map((id) => rows.find((r) => r?.id === id) ?? null);
  },
  fields: (t) => ({
    kind: t.field({ type: OperationKindEnum, resolve: (o) => o.kind }),
    status: t.field({ type: OperationStatusEnum, resolve: (o) => o.status }),
    template: t.string({ resolve: (o) => (o.params as { template: string }).template }),
    targetVersion: t.string({ nullable: true, resolve: (o) => (o.params as { targetVersion: string | null }).targetVersion }),
    total: t.exposeInt('total'),
    done: t.exposeInt('done', { description: 'Tenants finished, successfully or not.' }),
    failed: t.exposeInt('failed'),
    succeeded: t.int({ resolve: (o) => o.done - o.failed }),
    canarySize: t.exposeInt('canarySize', { description: 'Canaries that must succeed before the rest runs (see results { canary failureCause }).' }),
    pickedCanaries: t.stringList({ description: 'The canaries the operator picked (slugs), in order.', resolve: (o) => (o.params as unknown as OperationParams).canary ?? [] }),
    excluded: t.stringList({ description: 'The tenants the operator left out (slugs): they have no result.', resolve: (o) => (o.params as unknown as OperationParams).exclude ?? [] }),
    concurrency: t.exposeInt('concurrency'),
    createdBy: t.exposeString('createdBy'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    error: t.exposeString('error', { nullable: true }),
    results: t.field({
      type: [OperationResultRef],
      description:
        'Per tenant, in the order they are run (canaries first): the first `first` (20 by default, at most GRAPHQL_MAX_PAGE_SIZE: more is refused) ' +
        'after `afterPosition`; page on with the last result\'s position.',
      args: {
        status: t.arg({ type: [OperationItemStatusEnum], required: false }),
        first: t.arg.int({ defaultValue: DEFAULT_PAGE_SIZE }),
        afterPosition: t.arg.int({ required: false }),
      },
      complexity: (args, ctx) => ({ field: 1, multiplier: pageSizeOf({ first: args.first }, ctx.config) }),
      resolve: (o, args, ctx) => {
        const first = args.first ?? DEFAULT_PAGE_SIZE;
        assertPageSize('first', first, ctx.config);
        const page = { statuses: args.status ?? null, first, afterPosition: args.afterPosition ?? null };
        // Every operation of a page asks with the same arguments: one query for all of them.
        return ctx
          .loader<string, OperationItem[]>('operation-results', page, (ids) => ctx.services.get(FleetOperations).resultsByIds(ids, page))
          .load(o.id);
      },
    }),
  }),
});

builder.queryField('operations', (t) =>
  t.connection({
    type: OperationRef,
    description: 'Fleet operations, newest first (admins only).',
    authScopes: { admin: true },
    resolve: (_, args, ctx) =>
      resolveCursorConnection({ args, toCursor: (o: Operation) => o.id, ...pageOptions(args, ctx.config) }, ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
        ctx.services.get(FleetOperations).list({ after: after && isUuid(after) ? after : null, before: before && isUuid(before) ? before : null, limit, inverted }),
      ),
  }),
);
