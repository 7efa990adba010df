import { GraphQLError } from 'graphql';
import type { TenantUsageSample } from '../../domain/usage/usage-sample.js';
import { builder } from '../builder.js';
import { ConnectionUsageRef } from '../nodes/ConnectionUsage.js';

builder.subscriptionField('connectionUsage', (t) =>
  t.field({
    type: ConnectionUsageRef,
    description:
      'A tenant\'s usage: the current value at once, then whenever it changes and at least every 15 seconds. ' +
      'Admins may omit tenantSlug for every tenant; a tenant key gets its own tenant.',
    args: { tenantSlug: t.arg.string({ required: false }) },
    subscribe: async (_, { tenantSlug }, ctx) => {
      const viewer = ctx.viewer!;
      if (!tenantSlug) {
        if (viewer.role === 'ADMIN') return ctx.deps.usage.watchAll(() => true);
        return ctx.deps.usage.watchTenant(viewer.tenantId!);
      }
      const tenant = await ctx.deps.db.tenant.findUnique({ where: { slug: tenantSlug } });
      // Another tenant's slug gets the same answer as one that does not exist.
      if (!tenant || !ctx.canSee(tenant)) {
        throw new GraphQLError(`no tenant ${tenantSlug}`, { extensions: { code: 'NOT_FOUND' } });
      }
      return ctx.deps.usage.watchTenant(tenant.id);
    },
    resolve: (sample: TenantUsageSample) => sample,
  }),
);
