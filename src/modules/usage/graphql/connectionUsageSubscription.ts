import { GraphQLError } from 'graphql';
import { UsageService, type UsageValue } from '../usage-service.js';
import { TenantStore } from '../../tenants/index.js';
import { builder } from '../../../graphql/builder.js';
import { dropWhenTooSlow } from '../../../graphql/live-sessions.js';
import { ConnectionUsageRef } from './ConnectionUsage.js';

builder.subscriptionField('connectionUsage', (t) =>
  t.field({
    type: ConnectionUsageRef,
    description:
      'A tenant\'s usage: the current value at once, then whenever it changes and, while anyone watches, at least every ' +
      'USAGE_HEARTBEAT_MS (15 s). Admins may omit tenantSlug for every tenant: that stream opens with the tenants holding ' +
      'sessions now (not the whole fleet) and the others follow as they change or with their heartbeats, which are spread ' +
      'over the heartbeat period. A tenant key gets its own tenant. A subscriber that falls USAGE_SUBSCRIBER_QUEUE samples ' +
      'behind is ended with SUBSCRIBER_TOO_SLOW; a revoked or expired key ends it with KEY_REVOKED / KEY_EXPIRED.',
    args: { tenantSlug: t.arg.string({ required: false, description: 'The tenant to watch; admins may leave it out for every tenant.' }) },
    subscribe: async (_, { tenantSlug }, ctx) => {
      const viewer = ctx.viewer!;
      const usage = ctx.services.get(UsageService);
      if (!tenantSlug) {
        if (viewer.role === 'ADMIN') return usage.watchAll(() => true, dropWhenTooSlow(ctx));
        return usage.watchTenant(viewer.tenantId!, dropWhenTooSlow(ctx));
      }
      const tenant = await ctx.services.get(TenantStore).bySlug(tenantSlug);
      // Another tenant's slug gets the same answer as one that does not exist.
      if (!tenant || !ctx.canSee(tenant)) {
        throw new GraphQLError(`no tenant ${tenantSlug}`, { extensions: { code: 'NOT_FOUND' } });
      }
      return usage.watchTenant(tenant.id, dropWhenTooSlow(ctx));
    },
    resolve: (sample: UsageValue) => sample,
  }),
);
