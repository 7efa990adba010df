import { builder } from '../../../graphql/builder.js';
import { UpdateTenantQuotaPayloadRef } from '../../quotas/graphql/index.js';
import { PoolSync } from '../pool-sync.js';
import { PoolRef } from './Pool.js';

// The pool after a quota change: added here, as the pools module is above the quotas module.
builder.objectField(UpdateTenantQuotaPayloadRef, 'pool', (t) =>
  t.field({
    type: PoolRef,
    nullable: true,
    description: 'The pool as recorded when the call returned: the pooler is updated in the background (PENDING until it is; the reconciler finishes it if the pooler is down).',
    resolve: (p, _, ctx) => (p.tenant ? ctx.services.get(PoolSync).byTenantId(p.tenant.id) : null),
  }),
);
