import type { UsageBatchView } from '../../domain/usage/usage-service.js';
import { builder } from '../builder.js';
import { dropWhenTooSlow } from '../live-sessions.js';
import { ConnectionUsageBatchRef } from '../nodes/ConnectionUsage.js';

builder.subscriptionField('connectionUsageBatch', (t) =>
  t.field({
    type: ConnectionUsageBatchRef,
    description:
      'For dashboards watching the fleet: per sample, one message listing the tenants whose usage changed or whose ' +
      'heartbeat fell in that sample (heartbeats are spread over USAGE_HEARTBEAT_MS, so no message carries the whole fleet), ' +
      'and the tenants that left (no longer ACTIVE). It opens with the tenants holding sessions now; the others follow. ' +
      'Admins see every tenant, a tenant key its own. Samples in which nothing visible changed send nothing.',
    subscribe: (_, __, ctx) => {
      const viewer = ctx.viewer!;
      const visible = viewer.role === 'ADMIN' ? () => true : (tenantId: string) => tenantId === viewer.tenantId;
      return ctx.deps.usage.watchBatches(visible, dropWhenTooSlow(ctx));
    },
    resolve: (batch: UsageBatchView) => batch,
  }),
);
