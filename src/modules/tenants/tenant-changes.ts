import type { DomainEvents } from '../../platform/domain-events.js';

/**
 * What follows a committed change to a tenant but must never fail it: its pool following
 * (the pools module), a fresh look at its database (the inventory) and readiness (the health
 * module), all listening to `tenant.changed`. The caller waits at most POOL_APPLY_WAIT_MS, so
 * that what it returns (a pool, a pooled connection string) is usable at once when the pooler
 * is healthy; past that it answers with the pool PENDING and the work finishes in the background.
 */
export class TenantChanges {
  constructor(private readonly p: { events: DomainEvents; poolApplyWaitMs: number }) {}

  /** `health: false` only for a change readiness does not judge (a quota's): it is not read again for it. */
  committed(tenantId: string, what: { pool?: boolean; inventory?: boolean; health?: boolean }): Promise<void> {
    const payload = { tenantId, pool: what.pool ?? false, inventory: what.inventory ?? false, health: what.health ?? true };
    return this.p.events.publishAndWait('tenant.changed', payload, this.p.poolApplyWaitMs);
  }
}
