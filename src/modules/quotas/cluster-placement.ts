// Which cluster a new tenant goes to (issue 17, "Placement"): the one asked for, or among the
// ACTIVE clusters that match the region and labels asked for and have room for the quota, the
// one PLACEMENT_POLICY prefers. Room is CapacityPlanner's rule per cluster (connections its
// tenants may be promised, less those promised) and the cluster's maxTenants. The choice is
// made without a lock and checked again under the chosen cluster's capacity lock (assertCanTake),
// where the tenant's row is then written: two provisionings never overfill a cluster.
import type { Cluster } from '../../generated/prisma/client.js';
import type { Config } from '../../platform/config.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { UserError } from '../../platform/errors.js';
import type { ClusterRegistry } from '../clusters/index.js';
import type { CapacityPlanner } from './cluster-capacity.js';
import type { QuotaStore } from './quota-store.js';

/** What the caller asked: a cluster by id, or a region and/or labels (all of them must be on the cluster). */
export interface PlacementRequest {
  clusterId?: string | null;
  region?: string | null;
  labels?: readonly string[] | null;
}

export type PlacementPolicy = Config['PLACEMENT_POLICY'];

/** What is recorded in tenants.placement. */
export interface PlacementRecord {
  /** What the caller asked; null when nothing was (the policy chose among every ACTIVE cluster). */
  asked: { clusterId?: string; region?: string; labels?: string[] } | null;
  policy: PlacementPolicy;
  clusterId: string;
}

/** One cluster as placement saw it: a candidate with its room, or why it was not one. */
export interface PlacementCandidate {
  cluster: Cluster;
  /** Connections still free for quotas (capacity − allocated); null when it could not be read. */
  room: number | null;
  tenantCount: number;
  /** Tenants it may still take under maxTenants; null: no cap. */
  tenantSlots: number | null;
  /** Why it cannot take this tenant; null when it can. */
  excluded: string | null;
}

export interface ChooseOptions {
  placement?: PlacementRequest | null;
  quota: number;
  /** Clusters not to choose (a move's or a drain's source). */
  exclude?: readonly string[];
  /** For messages. */
  slug?: string;
}

export class ClusterPlacement {
  constructor(
    private readonly p: {
      db: ControlClient;
      config: Pick<Config, 'PLACEMENT_POLICY'>;
      clusters: ClusterRegistry;
      capacity: CapacityPlanner;
      quotas: QuotaStore;
    },
  ) {}

  get policy(): PlacementPolicy {
    return this.p.config.PLACEMENT_POLICY;
  }

  /** The record tenants.placement keeps for a choice. */
  record(placement: PlacementRequest | null | undefined, clusterId: string): PlacementRecord {
    const asked = normalise(placement);
    return { asked, policy: this.policy, clusterId };
  }

  /**
   * The cluster for a tenant of `quota` connections. With one cluster left to consider (one
   * asked for by id, or the only one that matches), it is returned as it is and its capacity
   * check under the lock (assertCanTake) says CLUSTER_CAPACITY_EXCEEDED with its figures, as
   * before there were many clusters. Otherwise the policy chooses among those with room, and
   * with none, PLACEMENT_FAILED names every cluster and why (its room, status, region, labels).
   */
  async choose(options: ChooseOptions): Promise<ClusterAdmin> {
    const rows = await this.considered(options);
    // One cluster in all (a single-cluster install, or one asked for by id): no choice to make, and
    // its room is checked under its lock anyway (so it pays no more than before placement existed).
    if (rows.length === 1 && this.exclusion(rows[0]!, options) === null) return this.p.clusters.adminFor(rows[0]!);
    const candidates = await this.withRoom(rows, options);
    const eligible = candidates.filter((c) => c.excluded === null);
    // The only cluster that matches lacks room: CLUSTER_CAPACITY_EXCEEDED with its figures, from the check under its lock.
    const matching = candidates.filter((c) => this.exclusion(c.cluster, options) === null);
    if (eligible.length === 0 && matching.length === 1 && matching[0]!.room !== null) return this.p.clusters.adminFor(matching[0]!.cluster);
    if (eligible.length === 0) throw new UserError('PLACEMENT_FAILED', this.refusal(options, candidates), 'placement');
    const best = [...eligible].sort(this.policy === 'pack' ? byPack : bySpread)[0]!;
    return this.p.clusters.adminFor(best.cluster);
  }

  /** Every cluster with its room for `quota`, or why it is not a candidate (for choose, and for messages). */
  async candidates(options: ChooseOptions): Promise<PlacementCandidate[]> {
    return this.withRoom(await this.considered(options), options);
  }

  /** The clusters placement looks at: the one asked for by id, or all of them. */
  private async considered(options: ChooseOptions): Promise<Cluster[]> {
    const asked = normalise(options.placement);
    if (asked?.clusterId && (asked.region || asked.labels)) {
      throw new UserError('INVALID_INPUT', 'placement takes a clusterId, or a region and/or labels, not both', 'placement');
    }
    const rows = await this.p.clusters.rows();
    if (asked?.clusterId && !rows.some((r) => r.id === asked.clusterId)) {
      throw new UserError('NOT_FOUND', `no cluster with id ${asked.clusterId}`, 'placement.clusterId');
    }
    return asked?.clusterId ? rows.filter((r) => r.id === asked.clusterId) : rows;
  }

  /** Why a cluster is not a candidate whatever its room (excluded, not ACTIVE, another region, a label missing); null when it may be. */
  private exclusion(cluster: Cluster, options: ChooseOptions): string | null {
    const asked = normalise(options.placement);
    if (options.exclude?.includes(cluster.id)) return 'excluded (the source)';
    if (cluster.status !== 'ACTIVE') return cluster.status;
    if (asked?.region && cluster.region !== asked.region) return `region ${cluster.region ?? 'none'}`;
    const lacking = (asked?.labels ?? []).filter((l) => !cluster.labels.includes(l));
    if (lacking.length) return `lacks label${lacking.length === 1 ? '' : 's'} ${lacking.join(', ')}`;
    return null;
  }

  private async withRoom(rows: Cluster[], options: ChooseOptions): Promise<PlacementCandidate[]> {
    const allocations = await this.p.quotas.allocationsByClusterIds(rows.map((r) => r.id));
    return Promise.all(
      rows.map(async (cluster, i): Promise<PlacementCandidate> => {
        const { tenantCount, allocatedConnections } = allocations[i]!;
        const tenantSlots = cluster.maxTenants === null ? null : Math.max(0, cluster.maxTenants - tenantCount);
        const base = { cluster, tenantCount, tenantSlots, room: null };
        const excluded = this.exclusion(cluster, options);
        if (excluded !== null) return { ...base, excluded };
        let room: number;
        try {
          room = await this.p.capacity.room(await this.p.clusters.adminFor(cluster), allocatedConnections);
        } catch (err) {
          return { ...base, excluded: `unreachable (${(err as Error).message.slice(0, 200)})` };
        }
        const fits = room >= options.quota && (tenantSlots === null || tenantSlots > 0);
        return { ...base, room, excluded: fits ? null : `no room (${describeRoom(room, tenantSlots)})` };
      }),
    );
  }

  /**
   * Under the cluster's capacity lock, just before the tenant's row is written: the cluster is
   * still there and ACTIVE, under its maxTenants, and the quota fits (CapacityPlanner).
   */
  async assertCanTake(cluster: ClusterAdmin, p: { tenantId: string | null; slug: string; quota: number; defaulted?: boolean }): Promise<void> {
    const row = await this.p.db.cluster.findUnique({ where: { id: cluster.id } });
    if (!row) throw new UserError('PLACEMENT_FAILED', `cluster ${cluster.name} was removed meanwhile: provision ${p.slug} again`, 'placement');
    if (row.status !== 'ACTIVE') throw new UserError('PLACEMENT_FAILED', `cluster ${row.name} is ${row.status}: it takes no new tenants`, 'placement');
    const allocation = await this.p.capacity.allocationExcept(row.id, p.tenantId);
    if (row.maxTenants !== null) {
      const count = allocation.tenantCount;
      if (count >= row.maxTenants) {
        throw new UserError('CLUSTER_CAPACITY_EXCEEDED', `cluster ${row.name} holds ${count} tenants, its maxTenants ${row.maxTenants}: ${p.slug} cannot be placed on it; raise maxTenants (updateCluster) or place it elsewhere`);
      }
    }
    await this.p.capacity.assertWithinCapacity(cluster, p, allocation);
  }

  private refusal(options: ChooseOptions, candidates: PlacementCandidate[]): string {
    const asked = normalise(options.placement);
    const what = asked ? JSON.stringify(asked) : `any ACTIVE cluster (PLACEMENT_POLICY ${this.policy})`;
    const lines = candidates.map((c) => `${c.cluster.name}: ${c.excluded}`);
    return `no cluster can take ${options.slug ?? 'the tenant'} (${options.quota} connections; asked ${what}): ${lines.length ? lines.join('; ') : 'no cluster is registered'}`;
  }
}

/** Most room first, then fewest tenants, then name. */
function bySpread(a: PlacementCandidate, b: PlacementCandidate): number {
  return b.room! - a.room! || a.tenantCount - b.tenantCount || a.cluster.name.localeCompare(b.cluster.name);
}

/** Least room that still fits first, then most tenants, then name. */
function byPack(a: PlacementCandidate, b: PlacementCandidate): number {
  return a.room! - b.room! || b.tenantCount - a.tenantCount || a.cluster.name.localeCompare(b.cluster.name);
}

function describeRoom(room: number, slots: number | null): string {
  return `room ${Math.max(0, room)} connections${slots === null ? '' : `, ${slots} of maxTenants left`}`;
}

function normalise(placement: PlacementRequest | null | undefined): PlacementRecord['asked'] {
  if (!placement) return null;
  const asked: NonNullable<PlacementRecord['asked']> = {};
  if (placement.clusterId) asked.clusterId = placement.clusterId;
  if (placement.region) asked.region = placement.region;
  if (placement.labels?.length) asked.labels = [...new Set(placement.labels)].sort();
  return Object.keys(asked).length ? asked : null;
}
