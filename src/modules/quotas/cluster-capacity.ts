import type { ClusterAdmin, ServerFacts } from '../../platform/db/cluster-admin.js';
import type { Config } from '../../platform/config.js';
import { controlPlaneConnections } from '../../platform/db/connection-budget.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { UserError } from '../../platform/errors.js';

export interface ClusterCapacity {
  maxConnections: number;
  superuserReserved: number;
  reserved: number;
  controlPlane: number;
  overcommitFactor: number;
  /** How many connections the tenants of this cluster may be promised in all. */
  capacity: number;
}

/** How the capacity is reached, for messages: "(max_connections 100 − 3 superuser-reserved − … ) × OVERCOMMIT_FACTOR 1". */
function formula(cap: ClusterCapacity): string {
  return (
    `(max_connections ${cap.maxConnections} − ${cap.superuserReserved} superuser-reserved − ${cap.reserved} reserved − ` +
    `${cap.controlPlane} for Tenantry) × OVERCOMMIT_FACTOR ${cap.overcommitFactor}`
  );
}

const MORE_ROOM = 'raise the server\'s max_connections or OVERCOMMIT_FACTOR, or lower other tenants\' quotas';

/** Below this many default tenants on an empty cluster, start-up warns: the server is too small for the defaults. */
export const FEW_DEFAULT_TENANTS = 3;

/** What a cluster has promised: its tenants that are not DEPROVISIONED, and the sum of their quotas. */
export interface Allocation {
  tenantCount: number;
  allocatedConnections: number;
}

export interface CapacityAdvice {
  capacity: ClusterCapacity;
  /** Connections promised to the cluster's tenants now. */
  allocated: number;
  /** How many tenants at the default quota the cluster serves when empty. */
  defaultTenantsFit: number;
  /** How many more fit beside today's tenants. */
  moreDefaultTenantsFit: number;
  /** One sentence for /health/ready and the start-up log. */
  summary: string;
  /** Set when the defaults barely fit (fewer than FEW_DEFAULT_TENANTS) or no further default tenant fits. */
  warning: string | null;
}

/**
 * How many connections a cluster's tenants may be promised, and whether a quota still fits:
 * the figures behind CLUSTER_CAPACITY_EXCEEDED, Cluster.capacity and the start-up advice.
 */
export class CapacityPlanner {
  constructor(
    private readonly p: {
      db: ControlClient;
      config: Pick<Config, 'OVERCOMMIT_FACTOR' | 'QUOTA_MIN' | 'DEFAULT_MAX_CONNECTIONS'>;
    },
  ) {}

  /** (max_connections − superuser-reserved − reserved − the control plane's own) × the over-commit factor. */
  async clusterCapacity(cluster: ClusterAdmin, known?: ServerFacts): Promise<ClusterCapacity> {
    const facts = known ?? (await cluster.facts());
    const controlPlane = controlPlaneConnections(cluster.holdsControlDatabase);
    const usable = facts.maxConnections - facts.superuserReservedConnections - facts.reservedConnections - controlPlane;
    return {
      maxConnections: facts.maxConnections,
      superuserReserved: facts.superuserReservedConnections,
      reserved: facts.reservedConnections,
      controlPlane,
      overcommitFactor: this.p.config.OVERCOMMIT_FACTOR,
      capacity: Math.max(0, Math.floor(usable * this.p.config.OVERCOMMIT_FACTOR)),
    };
  }

  /**
   * Connections a cluster can still promise: its capacity less what is `allocated` (negative when
   * over-committed by a lowered OVERCOMMIT_FACTOR or max_connections). Placement compares it with
   * the new tenant's quota; Cluster.roomConnections shows it.
   */
  async room(cluster: ClusterAdmin, allocated: number, known?: ServerFacts): Promise<number> {
    return (await this.clusterCapacity(cluster, known)).capacity - allocated;
  }

  /**
   * The cluster's allocation (its tenants that are not DEPROVISIONED, and the connections promised
   * to them), leaving one tenant out (the one being changed or provisioned again): one row of
   * cluster_allocations, which triggers keep with every write of tenants and quotas, so the cost
   * does not grow with the cluster's tenants.
   */
  async allocationExcept(clusterId: string, tenantId: string | null): Promise<Allocation> {
    const [row] = await this.p.db.$queryRaw<Allocation[]>`
      SELECT coalesce(a.tenant_count, 0)
               - (SELECT count(*)::int FROM tenants t WHERE t.id = ${tenantId}::uuid AND t.cluster_id = ${clusterId}::uuid AND t.status <> 'DEPROVISIONED') AS "tenantCount",
             coalesce(a.allocated_connections, 0)
               - coalesce((SELECT q.max_connections FROM quotas q WHERE q.tenant_id = ${tenantId}::uuid AND q.counted_cluster_id = ${clusterId}::uuid), 0) AS "allocatedConnections"
        FROM (SELECT) one LEFT JOIN cluster_allocations a ON a.cluster_id = ${clusterId}::uuid`;
    return row!;
  }

  /**
   * CLUSTER_CAPACITY_EXCEEDED, with the numbers, when `quota` does not fit beside the others
   * (`read`: the caller's allocationExcept of the same cluster and tenant, if it has one).
   * `defaulted`: the caller sent no maxConnections, so the message names DEFAULT_MAX_CONNECTIONS
   * (and no field). It never suggests a quota below QUOTA_MIN: with less room than that left,
   * the tenant cannot be placed on this cluster, and the message says so.
   */
  async assertWithinCapacity(cluster: ClusterAdmin, p: { tenantId: string | null; slug: string; quota: number; defaulted?: boolean }, read?: Allocation): Promise<void> {
    const [cap, allocation] = await Promise.all([this.clusterCapacity(cluster), read ?? this.allocationExcept(cluster.id, p.tenantId)]);
    const others = allocation.allocatedConnections;
    if (others + p.quota <= cap.capacity) return;
    const { QUOTA_MIN } = this.p.config;
    const room = Math.max(0, cap.capacity - others);
    const budget = `cluster ${cluster.name} can serve ${cap.capacity} tenant connections (${formula(cap)}); ${others} are allocated to other tenants`;
    let message: string;
    if (room < QUOTA_MIN) {
      const asked = p.defaulted ? `DEFAULT_MAX_CONNECTIONS ${p.quota}` : `${p.quota}`;
      message = `${budget}, leaving ${room}, below QUOTA_MIN ${QUOTA_MIN}: ${p.slug} (${asked}) cannot be placed on this cluster; ${MORE_ROOM}`;
    } else if (p.defaulted) {
      message =
        `${budget}, so ${p.slug} cannot have DEFAULT_MAX_CONNECTIONS ${p.quota}: pass maxConnections of at most ${room} ` +
        `(QUOTA_MIN is ${QUOTA_MIN}), lower DEFAULT_MAX_CONNECTIONS, or ${MORE_ROOM}`;
    } else {
      message = `${budget}, so ${p.slug} can have at most ${room}, not ${p.quota}`;
    }
    throw new UserError('CLUSTER_CAPACITY_EXCEEDED', message, p.defaulted ? undefined : 'maxConnections');
  }

  /**
   * How many tenants at DEFAULT_MAX_CONNECTIONS a cluster can take, in all and from now on:
   * stock PostgreSQL (max_connections 100) takes one, and a user should hear so at start and
   * in /health/ready rather than from the second provisionTenant.
   */
  async capacityAdvice(cluster: ClusterAdmin, known?: ServerFacts): Promise<CapacityAdvice> {
    const [capacity, { allocatedConnections: allocated }] = await Promise.all([this.clusterCapacity(cluster, known), this.allocationExcept(cluster.id, null)]);
    const defaultQuota = this.p.config.DEFAULT_MAX_CONNECTIONS;
    const defaultTenantsFit = Math.floor(capacity.capacity / defaultQuota);
    const moreDefaultTenantsFit = Math.floor(Math.max(0, capacity.capacity - allocated) / defaultQuota);
    const tenants = (n: number) => `${n} tenant${n === 1 ? '' : 's'}`;
    const summary =
      `cluster ${cluster.name} can serve ${capacity.capacity} tenant connections (${formula(capacity)}): ` +
      `${tenants(defaultTenantsFit)} at DEFAULT_MAX_CONNECTIONS ${defaultQuota}; ${allocated} allocated, room for ${moreDefaultTenantsFit} more`;
    const fix = 'raise max_connections on the server, lower DEFAULT_MAX_CONNECTIONS (or pass maxConnections), or raise OVERCOMMIT_FACTOR';
    let warning: string | null = null;
    if (defaultTenantsFit < FEW_DEFAULT_TENANTS) {
      warning = `cluster ${cluster.name} fits only ${tenants(defaultTenantsFit)} at DEFAULT_MAX_CONNECTIONS ${defaultQuota} (${capacity.capacity} tenant connections: ${formula(capacity)}); ${fix}`;
    } else if (moreDefaultTenantsFit === 0) {
      warning = `cluster ${cluster.name} has room for no further tenant at DEFAULT_MAX_CONNECTIONS ${defaultQuota} (${allocated} of ${capacity.capacity} allocated); ${fix}`;
    }
    return { capacity, allocated, defaultTenantsFit, moreDefaultTenantsFit, summary, warning };
  }
}
