import type { Tenant } from '../../generated/prisma/client.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { assertSettled, withTenant, type Visible } from '../tenants/tenant-access.js';
import type { InventoryFinding } from './tenant-inventory.js';

export interface TenantRefresh {
  tenant: Tenant;
  finding: InventoryFinding;
}

/**
 * The inventory for one tenant, now: its database is read under the tenant's lock, the
 * records (schema version, extensions) follow what is there, and what differed is drift.
 * For a single tenant's view that must not wait for the next pass (INVENTORY_INTERVAL_MS).
 */
export async function refreshTenant(deps: Deps, op: OperationContext, input: { slug: string }, visible: Visible): Promise<TenantRefresh> {
  return withTenant(deps, input.slug, visible, async (tenant) => {
    assertSettled(tenant, 'a refresh');
    const finding = await deps.inventory.check(tenant);
    await recordAuditEvent(deps.db, op, {
      category: 'inventory',
      action: 'tenant.refreshed',
      tenant,
      subject: tenant.databaseName,
      metadata: { drift: finding.drift, missingTables: finding.missingTables, databasePresent: finding.databasePresent, error: finding.error },
    });
    return { tenant, finding };
  });
}
