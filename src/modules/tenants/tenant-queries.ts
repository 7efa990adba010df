import type { Cluster, Prisma, Quota, Tenant, TenantSchemaVersion } from '../../generated/prisma/client.js';
import type { TenantStatus } from '../../generated/prisma/enums.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { visibleTenants, type Viewer } from '../../platform/viewer.js';

export type TenantOrderField = 'SLUG' | 'DISPLAY_NAME' | 'CREATED_AT' | 'USAGE_PERCENT';
export type OrderDirection = 'ASC' | 'DESC';

export interface TenantFilter {
  status?: TenantStatus[] | null;
  /** Matches slug or display name, case-insensitively. */
  search?: string | null;
  clusterId?: string | null;
}

const ORDER_COLUMN = { SLUG: 'slug', DISPLAY_NAME: 'displayName', CREATED_AT: 'createdAt' } as const;

/** A page row: the tenant, with its latest usage sample when the page is ordered by usage. */
export type ListedTenant = Tenant & { usage?: { usagePercent: number } | null };

/**
 * A page of tenants in (field, id) order, after/before a keyset cursor [value, id].
 * USAGE_PERCENT orders by each tenant's latest usage sample (a join, no query per
 * tenant); tenants never sampled (not ACTIVE) are left out of that order.
 */
export async function listTenants(
  db: ControlClient,
  viewer: Viewer,
  p: {
    filter?: TenantFilter | null;
    field: TenantOrderField;
    direction: OrderDirection;
    after?: [string, string];
    before?: [string, string];
    limit: number;
    inverted: boolean;
  },
): Promise<ListedTenant[]> {
  const byUsage = p.field === 'USAGE_PERCENT';
  const ascending = (p.direction === 'ASC') !== p.inverted;
  const dir = ascending ? 'asc' : 'desc';
  // Rows beyond a cursor in the requested order: (value, id) compared as a pair.
  const beyond = ([value, id]: [string, string], forward: boolean): Prisma.TenantWhereInput => {
    const op = forward === (p.direction === 'ASC') ? 'gt' : 'lt';
    if (byUsage) {
      const v = Number(value);
      return { OR: [{ usage: { usagePercent: { [op]: v } } }, { usage: { usagePercent: v }, id: { [op]: id } }] };
    }
    const column = ORDER_COLUMN[p.field as Exclude<TenantOrderField, 'USAGE_PERCENT'>];
    const parsed = p.field === 'CREATED_AT' ? new Date(value) : value;
    return { OR: [{ [column]: { [op]: parsed } }, { [column]: parsed, id: { [op]: id } }] };
  };
  const where: Prisma.TenantWhereInput = {
    AND: [
      visibleTenants(viewer),
      p.filter?.status?.length ? { status: { in: p.filter.status } } : { status: { not: 'DEPROVISIONED' } },
      p.filter?.search
        ? { OR: [{ slug: { contains: p.filter.search, mode: 'insensitive' } }, { displayName: { contains: p.filter.search, mode: 'insensitive' } }] }
        : {},
      p.filter?.clusterId ? { clusterId: p.filter.clusterId } : {},
      byUsage ? { usage: { isNot: null } } : {},
      p.after ? beyond(p.after, true) : {},
      p.before ? beyond(p.before, false) : {},
    ],
  };
  const orderBy: Prisma.TenantOrderByWithRelationInput[] = byUsage
    ? [{ usage: { usagePercent: dir } }, { id: dir }]
    : [{ [ORDER_COLUMN[p.field as Exclude<TenantOrderField, 'USAGE_PERCENT'>]]: dir }, { id: dir }];
  return db.tenant.findMany({ where, orderBy, take: p.limit, include: byUsage ? { usage: { select: { usagePercent: true } } } : undefined });
}

export function tenantCursorValue(tenant: ListedTenant, field: TenantOrderField): string {
  if (field === 'USAGE_PERCENT') return String(tenant.usage?.usagePercent ?? 0);
  const v = tenant[ORDER_COLUMN[field]];
  return v instanceof Date ? v.toISOString() : v;
}

/** One query for any number of tenants; results in the order of `ids`. */
export async function tenantsByIds(db: ControlClient, ids: readonly string[]): Promise<(Tenant | null)[]> {
  const rows = await db.tenant.findMany({ where: { id: { in: [...ids] } } });
  return inOrder(ids, rows, (r) => r.id);
}

export async function quotasByTenantIds(db: ControlClient, ids: readonly string[]): Promise<(Quota | null)[]> {
  const rows = await db.quota.findMany({ where: { tenantId: { in: [...ids] } } });
  return inOrder(ids, rows, (r) => r.tenantId);
}

export type SchemaVersionRow = TenantSchemaVersion & { tenant: Pick<Tenant, 'templateName'> };

export async function schemaVersionsByTenantIds(db: ControlClient, ids: readonly string[], component: string): Promise<(SchemaVersionRow | null)[]> {
  const rows = await db.tenantSchemaVersion.findMany({
    where: { tenantId: { in: [...ids] }, component },
    include: { tenant: { select: { templateName: true } } },
  });
  return inOrder(ids, rows, (r) => r.tenantId);
}

/** Every component's recorded version, per tenant. */
export async function schemaVersionRowsByTenantIds(db: ControlClient, ids: readonly string[]): Promise<SchemaVersionRow[][]> {
  const rows = await db.tenantSchemaVersion.findMany({ where: { tenantId: { in: [...ids] } }, include: { tenant: { select: { templateName: true } } }, orderBy: { component: 'asc' } });
  return ids.map((id) => rows.filter((r) => r.tenantId === id));
}

export async function clustersByIds(db: ControlClient, ids: readonly string[]): Promise<(Cluster | null)[]> {
  const rows = await db.cluster.findMany({ where: { id: { in: [...ids] } } });
  return inOrder(ids, rows, (r) => r.id);
}

export interface ClusterAllocation {
  clusterId: string;
  tenantCount: number;
  allocatedConnections: number;
}

/** Tenants and the connections promised to them, per cluster (deprovisioned tenants excluded). */
export async function allocationsByClusterIds(db: ControlClient, ids: readonly string[]): Promise<ClusterAllocation[]> {
  const rows = await db.$queryRaw<{ cluster_id: string; tenant_count: number; allocated: number }[]>`
    SELECT t.cluster_id::text AS cluster_id, count(*)::int AS tenant_count, coalesce(sum(q.max_connections), 0)::int AS allocated
    FROM tenants t LEFT JOIN quotas q ON q.tenant_id = t.id
    WHERE t.cluster_id::text = ANY(${[...ids]}) AND t.status <> 'DEPROVISIONED'
    GROUP BY t.cluster_id`;
  const found = new Map(rows.map((r) => [r.cluster_id, r]));
  return ids.map((id) => ({ clusterId: id, tenantCount: found.get(id)?.tenant_count ?? 0, allocatedConnections: found.get(id)?.allocated ?? 0 }));
}

function inOrder<T>(ids: readonly string[], rows: T[], key: (row: T) => string): (T | null)[] {
  const byKey = new Map(rows.map((r) => [key(r), r]));
  return ids.map((id) => byKey.get(id) ?? null);
}
