import type { Prisma, Tenant } from '../../generated/prisma/client.js';
import { TenantStatus } from '../../generated/prisma/enums.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsInOrder } from '../../platform/db/rows-in-order.js';
import { visibleTenants, type Viewer } from '../../platform/viewer.js';

export type { Tenant };
export { TenantStatus };

type TenantOrderField = 'SLUG' | 'DISPLAY_NAME' | 'CREATED_AT' | 'USAGE_PERCENT';
type OrderDirection = 'ASC' | 'DESC';

interface TenantFilter {
  status?: TenantStatus[] | null;
  /** Matches slug or display name, case-insensitively. */
  search?: string | null;
  clusterId?: string | null;
  /** ACTIVE tenants whose latest usage sample is above this percent (served by tenant_usage's usage_percent index). */
  usagePercentAbove?: number | null;
}

/** A page row: the tenant, with its latest usage sample when the page is ordered by usage. */
export type ListedTenant = Tenant & { usage?: { usagePercent: number } | null };

const ORDER_COLUMN = { SLUG: 'slug', DISPLAY_NAME: 'displayName', CREATED_AT: 'createdAt' } as const;

/** The tenants table, as lists and lookups read it (changes happen in the services, with their audit events). */
export class TenantStore {
  constructor(private readonly db: ControlClient) {}

  bySlug(slug: string): Promise<Tenant | null> {
    return this.db.tenant.findUnique({ where: { slug } });
  }

  byId(id: string): Promise<Tenant | null> {
    return this.db.tenant.findUnique({ where: { id } });
  }

  /** One query for any number of tenants; results in the order of `ids`. */
  async byIds(ids: readonly string[]): Promise<(Tenant | null)[]> {
    const rows = await this.db.tenant.findMany({ where: { id: { in: [...ids] } } });
    return rowsInOrder(ids, rows, (r) => r.id);
  }

  /**
   * A page of tenants in (field, id) order, after/before a keyset cursor [value, id].
   * USAGE_PERCENT orders by each tenant's latest usage sample (a join, no query per tenant);
   * tenants never sampled (not ACTIVE) are left out of that order.
   */
  list(
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
    const column = ORDER_COLUMN[p.field as Exclude<TenantOrderField, 'USAGE_PERCENT'>];
    const dir = (p.direction === 'ASC') !== p.inverted ? 'asc' : 'desc';
    // Rows beyond a cursor in the requested order: (value, id) compared as a pair.
    const beyond = ([value, id]: [string, string], forward: boolean): Prisma.TenantWhereInput => {
      const op = forward === (p.direction === 'ASC') ? 'gt' : 'lt';
      if (byUsage) {
        const v = Number(value);
        return { OR: [{ usage: { usagePercent: { [op]: v } } }, { usage: { usagePercent: v }, id: { [op]: id } }] };
      }
      const parsed = p.field === 'CREATED_AT' ? new Date(value) : value;
      return { OR: [{ [column]: { [op]: parsed } }, { [column]: parsed, id: { [op]: id } }] };
    };
    const where: Prisma.TenantWhereInput = {
      AND: [
        matching(viewer, p.filter),
        byUsage ? { usage: { isNot: null } } : {},
        p.after ? beyond(p.after, true) : {},
        p.before ? beyond(p.before, false) : {},
      ],
    };
    const orderBy: Prisma.TenantOrderByWithRelationInput[] = [byUsage ? { usage: { usagePercent: dir } } : { [column]: dir }, { id: dir }];
    return this.db.tenant.findMany({ where, orderBy, take: p.limit, include: byUsage ? { usage: { select: { usagePercent: true } } } : undefined });
  }

  /** How many tenants list() gives over all its pages (ordered by usage, only those sampled). */
  count(viewer: Viewer, filter: TenantFilter | null | undefined, field: TenantOrderField): Promise<number> {
    return this.db.tenant.count({ where: { AND: [matching(viewer, filter), field === 'USAGE_PERCENT' ? { usage: { isNot: null } } : {}] } });
  }
}

/** Tenants the caller may see that match the filter (a list and its totalCount share it). */
function matching(viewer: Viewer, filter: TenantFilter | null | undefined): Prisma.TenantWhereInput {
  return {
    AND: [
      visibleTenants(viewer),
      filter?.status?.length ? { status: { in: filter.status } } : { status: { not: 'DEPROVISIONED' } },
      filter?.search
        ? { OR: [{ slug: { contains: filter.search, mode: 'insensitive' } }, { displayName: { contains: filter.search, mode: 'insensitive' } }] }
        : {},
      filter?.clusterId ? { clusterId: filter.clusterId } : {},
      filter?.usagePercentAbove != null ? { status: 'ACTIVE', usage: { usagePercent: { gt: filter.usagePercentAbove } } } : {},
    ],
  };
}

/** The value a keyset cursor holds for a tenant in this order. */
export function tenantCursorValue(tenant: ListedTenant, field: TenantOrderField): string {
  if (field === 'USAGE_PERCENT') return String(tenant.usage?.usagePercent ?? 0);
  const v = tenant[ORDER_COLUMN[field]];
  return v instanceof Date ? v.toISOString() : v;
}
