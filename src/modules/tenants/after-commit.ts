import type { Deps } from '../../deps.js';

/**
 * Work that follows a committed change but must never fail it: the pooler catching up and
 * the inventory taking a fresh look. Both are recorded state that a background pass
 * completes anyway (the reconciler, the next inventory). The caller may wait a bounded time
 * for the pooler (POOL_APPLY_WAIT_MS), so that what it returns - a pool, a pooled connection
 * string - is usable at once when the pooler is healthy; past that it answers with the pool
 * PENDING and the apply finishes in the background.
 */
export async function afterCommit(deps: Deps, p: { tenantId: string; pool?: boolean; inventory?: boolean }): Promise<void> {
  if (p.inventory) deps.inventory.checkSoon(p.tenantId);
  // Readiness follows the records at once (one small query), not at the next pass.
  await deps.readiness.refreshTenant(p.tenantId).catch((err) => deps.logger.warn({ err, tenantId: p.tenantId }, 'readiness refresh failed'));
  if (!p.pool) return;
  // The apply outlives this request: it must not run inside the request's locks.
  const applied = deps.locks.detached(() => deps.pools.request()).catch((err) => {
    deps.logger.warn({ err, tenantId: p.tenantId }, 'pool update after a change failed; the reconciler retries');
  });
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, deps.config.POOL_APPLY_WAIT_MS);
    timer.unref();
  });
  await Promise.race([applied, waited]);
  clearTimeout(timer);
}
