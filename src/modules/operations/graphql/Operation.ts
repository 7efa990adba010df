import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { FleetOperations, type OperationItemStatus, type OperationKind, type Operation, type OperationItem, type OperationParams } from '../fleet-operations.js';
import { TenantStore } from '../../tenants/index.js';
import { builder } from '../../../graphql/builder.js';
import { describedValues } from '../../../graphql/enum-values.js';
import { isUuid } from '../../../graphql/ids.js';
import { assertPageSize, DEFAULT_PAGE_SIZE, pageOptions, pageSizeOf } from '../../../graphql/pagination.js';
import { countedConnection, withTotalCount } from '../../../graphql/total-count.js';
import { TenantRef } from '../../tenants/graphql/index.js';

const KIND_DESCRIPTIONS: Record<OperationKind, string> = {
  UPGRADE_SCHEMAS: 'upgradeAllTenantSchemas: each ACTIVE tenant of a template to its target schema version.',
  UPDATE_EXTENSIONS: 'updateAllTenantExtensions: updateTenantExtensions on each ACTIVE tenant of a template.',
  SECURE_TENANTS: 'secureAllTenants: each tenant provisioned before the ownership model brought under it (docs/security.md).',
  DRAIN_CLUSTER: 'drainCluster: each tenant of a cluster moved to another cluster placement picks, canary first.',
};
const OperationKindEnum = builder.enumType('OperationKind', {
  description: 'What a fleet operation does to each tenant.',
  values: describedValues(KIND_DESCRIPTIONS),
});
const OperationStatusEnum = builder.enumType('OperationStatus', {
  description: 'Where a fleet operation stands.',
  values: {
    PENDING: { description: 'Recorded; no tenant started yet.' },
    RUNNING: { description: 'Tenants are being run (also after a restart, which resumes it).' },
    SUCCEEDED: { description: 'Every tenant done without error.' },
    COMPLETED_WITH_ERRORS: { description: 'Every tenant tried; some failed (see results).' },
    FAILED: { description: 'A canary failed because of the step itself (not its own objects): the rest was not run.' },
  },
});
const RESULT_STATUS_DESCRIPTIONS: Record<OperationItemStatus, string> = {
  PENDING: 'Not started yet.',
  RUNNING: 'Being run now.',
  SUCCEEDED: 'Done (or there was nothing to do: see message).',
  FAILED: 'Failed: see message and failureCause.',
  SKIPPED: 'Not run: the operation stopped before it (see message).',
};
const OperationItemStatusEnum = builder.enumType('OperationResultStatus', {
  description: 'Where an operation stands with one tenant.',
  values: describedValues(RESULT_STATUS_DESCRIPTIONS),
});
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
    tenantSlug: t.exposeString('tenantSlug', { description: 'The tenant\'s slug when the operation started.' }),
    tenant: t.loadable({
      type: TenantRef,
      nullable: true,
      description: 'The tenant; null if its record is gone.',
      load: (ids: string[], ctx) => ctx.services.get(TenantStore).byIds(ids),
      resolve: (i) => i.tenantId,
    }),
    position: t.exposeInt('position', { description: 'Its place in the run order (canaries first), from 0; what afterPosition takes.' }),
    status: t.field({ type: OperationItemStatusEnum, description: 'Where the operation stands with this tenant.', resolve: (i) => i.status }),
    message: t.exposeString('message', { nullable: true, description: 'What happened, e.g. "applied 1.1.0, 1.2.0", the failed step\'s error, why it was skipped; null before it ran.' }),
    fromVersion: t.exposeString('fromVersion', { nullable: true, description: 'The tenant\'s schema version when the operation started.' }),
    toVersion: t.exposeString('toVersion', { nullable: true, description: 'Its schema version after this tenant was run; null before.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When this tenant was started; null before.' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true, description: 'When this tenant was done; null before.' }),
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
    kind: t.field({ type: OperationKindEnum, description: 'What it does to each tenant.', resolve: (o) => o.kind }),
    status: t.field({ type: OperationStatusEnum, description: 'Where it stands.', resolve: (o) => o.status }),
    template: t.string({ description: 'The template whose tenants it runs on (SECURE_TENANTS: every template; this says "default").', resolve: (o) => (o.params as { template: string }).template }),
    targetVersion: t.string({
      nullable: true,
      description: 'The schema version asked for; null: each tenant\'s newest version of its major (or a kind that changes no version).',
      resolve: (o) => (o.params as { targetVersion: string | null }).targetVersion,
    }),
    total: t.exposeInt('total', { description: 'Tenants it runs on (excluded ones not counted).' }),
    done: t.exposeInt('done', { description: 'Tenants finished, successfully or not.' }),
    failed: t.exposeInt('failed', { description: 'Tenants finished with FAILED.' }),
    succeeded: t.int({ description: 'Tenants finished without error (done - failed).', resolve: (o) => o.done - o.failed }),
    canarySize: t.exposeInt('canarySize', { description: 'Canaries that must succeed before the rest runs (see results { canary failureCause }).' }),
    pickedCanaries: t.stringList({ description: 'The canaries the operator picked (slugs), in order.', resolve: (o) => (o.params as unknown as OperationParams).canary ?? [] }),
    excluded: t.stringList({ description: 'The tenants the operator left out (slugs): they have no result.', resolve: (o) => (o.params as unknown as OperationParams).exclude ?? [] }),
    concurrency: t.exposeInt('concurrency', { description: 'Tenants run at once (1 to 16).' }),
    createdBy: t.exposeString('createdBy', { description: 'Who started it: "<key name> (apikey:<key id>)", or "system" when a server started it by itself.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was started.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When it began running; null while PENDING.' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true, description: 'When it finished; null while PENDING or RUNNING.' }),
    error: t.exposeString('error', { nullable: true, description: 'Why it FAILED as a whole (e.g. the canary failed because of the step); null otherwise.' }),
    results: t.field({
      type: [OperationResultRef],
      description:
        'Per tenant, in the order they are run (canaries first): the first `first` (20 by default, at most GRAPHQL_MAX_PAGE_SIZE: more is refused) ' +
        'after `afterPosition`; page on with the last result\'s position.',
      args: {
        status: t.arg({ type: [OperationItemStatusEnum], required: false, description: 'Only results of these statuses (default: all).' }),
        first: t.arg.int({ defaultValue: DEFAULT_PAGE_SIZE, description: 'How many results, 0 to GRAPHQL_MAX_PAGE_SIZE (default 20).' }),
        afterPosition: t.arg.int({ required: false, description: 'Only results after this position (the last one of the previous page).' }),
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

const OperationFilter = builder.inputType('OperationFilter', {
  description: 'Which operations to list; a field left out (or empty) matches all.',
  fields: (t) => ({
    status: t.field({ type: [OperationStatusEnum], required: false, description: 'Any of these statuses.' }),
    kind: t.field({ type: [OperationKindEnum], required: false, description: 'Any of these kinds.' }),
  }),
});

const OperationConnectionRef = countedConnection(OperationRef, 'Operation', 'fleet operations');

builder.queryField('operations', (t) =>
  t.connection({
    type: OperationRef,
    description: 'Fleet operations, newest first (admins only).',
    authScopes: { admin: true },
    args: { filter: t.arg({ type: OperationFilter, description: 'Only operations of these statuses and kinds.' }) },
    resolve: async (_, args, ctx) => {
      const operations = ctx.services.get(FleetOperations);
      const page = await resolveCursorConnection({ args, toCursor: (o: Operation) => o.id, ...pageOptions(args, ctx.config) }, ({ before, after, limit, inverted }: ResolveCursorConnectionArgs) =>
        operations.list({ filter: args.filter, after: after && isUuid(after) ? after : null, before: before && isUuid(before) ? before : null, limit, inverted }),
      );
      return withTotalCount(page, () => operations.count(args.filter));
    },
  }, OperationConnectionRef),
);
