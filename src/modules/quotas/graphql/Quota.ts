import type { Quota, QuotaChange } from '../../../generated/prisma/client.js';
import { quotaHistoryByTenantIds } from '../quota-history.js';
import { builder } from '../../../graphql/builder.js';
import { assertPageSize, pageSizeOf } from '../../../graphql/pagination.js';

export const QuotaChangeRef = builder.objectRef<QuotaChange>('QuotaChange').implement({
  description: 'One change of a tenant\'s connection quota.',
  fields: (t) => ({
    at: t.expose('at', { type: 'DateTime' }),
    actor: t.exposeString('actor'),
    oldMaxConnections: t.exposeInt('oldMaxConnections', { nullable: true }),
    newMaxConnections: t.exposeInt('newMaxConnections'),
    reason: t.exposeString('reason', { nullable: true }),
  }),
});

export const QuotaRef = builder.objectRef<Quota>('Quota').implement({
  description: 'How many connections a tenant\'s role may hold (its CONNECTION LIMIT).',
  fields: (t) => ({
    maxConnections: t.exposeInt('maxConnections'),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    updatedBy: t.exposeString('updatedBy'),
    history: t.field({
      type: [QuotaChangeRef],
      description: 'Changes, newest first: at most GRAPHQL_MAX_PAGE_SIZE (more is refused).',
      args: { first: t.arg.int({ defaultValue: 20 }) },
      complexity: (args, ctx) => ({ field: 1, multiplier: pageSizeOf({ first: args.first }, ctx.deps.config) }),
      resolve: (q, args, ctx) => {
        const first = args.first ?? 20;
        assertPageSize('first', first, ctx.deps.config);
        // Every quota of a page asks with the same `first`: one query for all of them.
        return ctx.loader<string, QuotaChange[]>('quota-history', first, (ids) => quotaHistoryByTenantIds(ctx.deps.db, ids, first)).load(q.tenantId);
      },
    }),
  }),
});
