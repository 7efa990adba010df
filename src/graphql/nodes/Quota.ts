import type { Quota, QuotaChange } from '../../generated/prisma/client.js';
import { builder } from '../builder.js';

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
      description: 'Changes, newest first.',
      args: { first: t.arg.int({ defaultValue: 20 }) },
      resolve: (q, args, ctx) =>
        ctx.deps.db.quotaChange.findMany({
          where: { tenantId: q.tenantId },
          orderBy: [{ at: 'desc' }, { id: 'desc' }],
          take: Math.min(Math.max(args.first ?? 20, 1), 100),
        }),
    }),
  }),
});
