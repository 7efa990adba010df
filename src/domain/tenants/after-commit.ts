import type { Deps } from '../deps.js';

/**
 * Work that follows a committed change but must never fail it: the pooler catching up and
 * the inventory taking a fresh look. Both are recorded state that a background pass
 * completes anyway (the reconciler, the next inventory), so here they are only started.
 */
export function afterCommit(deps: Deps, p: { tenantId: string; pool?: boolean; inventory?: boolean }): void {
  if (p.pool) void deps.pools.request().catch((err) => deps.logger.warn({ err, tenantId: p.tenantId }, 'pool update after a change failed; the reconciler retries'));
  if (p.inventory) deps.inventory.checkSoon(p.tenantId);
}
