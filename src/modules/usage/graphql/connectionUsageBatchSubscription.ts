import { GraphQLError } from 'graphql';
import { UsageService, type UsageBatchView } from '../usage-service.js';
import { TenantStore } from '../../tenants/index.js';
import { builder } from '../../../graphql/builder.js';
import { dropWhenTooSlow } from '../../../graphql/live-sessions.js';
import { ConnectionUsageBatchRef } from './ConnectionUsage.js';

builder.subscriptionField('connectionUsageBatch', (t) =>
  t.field({
    type: ConnectionUsageBatchRef,
    description:
      'For dashboards watching the fleet: per sample, one message listing the tenants whose usage changed or whose ' +
      'heartbeat fell in that sample (heartbeats are spread over USAGE_HEARTBEAT_MS, so no message carries the whole fleet), ' +
      'and the tenants that left (no longer ACTIVE). Without tenantSlugs it opens with the tenants holding sessions now and ' +
      'the others follow; with tenantSlugs (at most GRAPHQL_MAX_PAGE_SIZE, e.g. the page a dashboard shows) it streams those ' +
      'tenants only and opens with a snapshot of every one of them (snapshot: true). Admins see every tenant, a tenant key ' +
      'its own (another tenant\'s slug is NOT_FOUND). Samples in which nothing visible changed send nothing.',
    args: { tenantSlugs: t.arg.stringList({ required: false, description: 'Only these tenants (at most GRAPHQL_MAX_PAGE_SIZE); default: every tenant the key may see.' }) },
    subscribe: async (_, { tenantSlugs }, ctx) => {
      const viewer = ctx.viewer!;
      const usage = ctx.services.get(UsageService);
      if (!tenantSlugs) {
        const visible = viewer.role === 'ADMIN' ? () => true : (tenantId: string) => tenantId === viewer.tenantId;
        return usage.watchBatches(visible, dropWhenTooSlow(ctx));
      }
      const max = ctx.config.GRAPHQL_MAX_PAGE_SIZE;
      const slugs = [...new Set(tenantSlugs)];
      if (slugs.length > max) {
        throw new GraphQLError(`tenantSlugs names ${slugs.length} tenants; at most ${max} (GRAPHQL_MAX_PAGE_SIZE)`, { extensions: { code: 'INVALID_INPUT' } });
      }
      // One query: Prisma batches the lookups of one tick.
      const found = await Promise.all(slugs.map((slug) => ctx.services.get(TenantStore).bySlug(slug)));
      const tenants = found.filter((t) => t !== null);
      // Another tenant's slug gets the same answer as one that does not exist.
      const missing = slugs.filter((slug) => !tenants.some((t) => t.slug === slug && ctx.canSee(t)));
      if (missing.length) throw new GraphQLError(`no tenant ${missing.join(', ')}`, { extensions: { code: 'NOT_FOUND' } });
      return usage.watchTenantBatches(tenants, dropWhenTooSlow(ctx));
    },
    resolve: (batch: UsageBatchView) => batch,
  }),
);
