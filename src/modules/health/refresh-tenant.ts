import type { ControlClient } from '../../platform/db/control-client.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import { assertSettled, type Tenant, type TenantAccess, type Visible } from '../tenants/index.js';
import type { InventoryFinding, TenantInventory } from './tenant-inventory.js';

export interface TenantRefreshResult {
  tenant: Tenant;
  finding: InventoryFinding;
}

/**
 * The inventory for one tenant, now: its database is read under the tenant's lock, the
 * records (schema version, extensions) follow what is there, and what differed is drift.
 * For a single tenant's view that must not wait for the next pass (INVENTORY_INTERVAL_MS).
 */
export class TenantRefresh {
  constructor(private readonly p: { db: ControlClient; access: TenantAccess; inventory: TenantInventory }) {}

  async refreshTenant(op: OperationContext, input: { slug: string }, visible: Visible): Promise<TenantRefreshResult> {
    return this.p.access.withTenant(input.slug, visible, async (tenant) => {
      assertSettled(tenant, 'a refresh');
      const finding = await this.p.inventory.check(tenant);
      await recordAuditEvent(this.p.db, op, {
        category: 'inventory',
        action: 'tenant.refreshed',
        tenant,
        subject: tenant.databaseName,
        metadata: { drift: finding.drift, missingTables: finding.missingTables, databasePresent: finding.databasePresent, error: finding.error },
      });
      return { tenant, finding };
    });
  }
}
