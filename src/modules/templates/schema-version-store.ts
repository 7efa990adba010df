import type { Prisma, Tenant, TenantSchemaVersion } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsGrouped, rowsInOrder } from '../../platform/db/rows-in-order.js';
import { TENANT_COMPONENT, type SchemaVersionRow } from '../tenants/index.js';

/** A version Tenantry recorded for a tenant database, with the template it is judged against. */
export type RecordedSchemaVersion = TenantSchemaVersion & { tenant: Pick<Tenant, 'templateName'> };

/**
 * The control database's mirror of each tenant database's `__SchemaVersion` (the tenant
 * database holds the truth): lists read it without opening any tenant database.
 */
export class SchemaVersionStore {
  constructor(private readonly p: { db: ControlClient }) {}

  /** One component's recorded version per tenant. */
  async byTenantIds(tenantIds: readonly string[], component: string): Promise<(RecordedSchemaVersion | null)[]> {
    return rowsInOrder(tenantIds, await this.find(tenantIds, component), (r) => r.tenantId);
  }

  /** Every component's recorded version, per tenant. */
  async rowsByTenantIds(tenantIds: readonly string[]): Promise<RecordedSchemaVersion[][]> {
    return rowsGrouped(tenantIds, await this.find(tenantIds), (r) => r.tenantId);
  }

  private find(tenantIds: readonly string[], component?: string): Promise<RecordedSchemaVersion[]> {
    return this.p.db.tenantSchemaVersion.findMany({
      where: { tenantId: { in: [...tenantIds] }, component },
      include: { tenant: { select: { templateName: true } } },
      orderBy: { component: 'asc' },
    });
  }

  /** Mirrors a tenant database's version in the control database, so lists never open a tenant database. */
  async mirrorSchemaVersion(tenantId: string, row: SchemaVersionRow): Promise<void> {
    await this.p.db.$transaction((tx) => mirrorSchemaVersionIn(tx, tenantId, row));
  }
}

/** The same, inside the caller's transaction (provisioning records it with the step that read it). */
export async function mirrorSchemaVersionIn(tx: Prisma.TransactionClient, tenantId: string, row: SchemaVersionRow): Promise<void> {
  await tx.tenantSchemaVersion.upsert({
    where: { tenantId_component: { tenantId, component: TENANT_COMPONENT } },
    create: { tenantId, component: TENANT_COMPONENT, ...row },
    update: row,
  });
  await tx.tenant.update({ where: { id: tenantId }, data: { templateVersion: row.version } });
}
