// The pools module's GraphQL: the Pool node (Tenant.pool, UpdateTenantQuotaPayload.pool) and the reconcilePools mutation.
import './Pool.js';
import './reconcilePools.js';
import './updateTenantQuotaPool.js';
