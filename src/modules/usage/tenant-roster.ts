import type { ControlClient } from '../../platform/db/control-client.js';
import { Prisma } from '../../generated/prisma/client.js';
import { heartbeatPhase, type RemovedTenant, type SampledTenant } from './usage-sample.js';

export interface RosterEntry extends SampledTenant {
  /** Where in each heartbeat period this tenant's heartbeat falls. */
  phase: number;
}

/**
 * The next read's horizon, from this statement's snapshot: the lowest id among the
 * transactions still running when it was taken (or, with none, the next id to be given),
 * leaving out those pg_stat_activity shows running in other databases: they cannot write
 * to the control database, and a tenant holding a transaction open for a day must not make
 * every sample re-read a day of changes. A transaction that ended between the snapshot and
 * the look at pg_stat_activity is not left out, so the horizon errs low, never high.
 */
const HORIZON = Prisma.sql`
  SELECT coalesce(
    (SELECT min(x::text::bigint) FROM pg_catalog.pg_snapshot_xip(pg_catalog.pg_current_snapshot()) AS x
     WHERE (x::text::bigint & 4294967295) NOT IN (
       SELECT a.backend_xid::text::bigint FROM pg_catalog.pg_stat_activity a
       WHERE a.backend_xid IS NOT NULL AND a.datname IS DISTINCT FROM pg_catalog.current_database())),
    pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::bigint)::text AS horizon`;

interface RosterRow {
  horizon: string;
  id: string | null;
  slug: string | null;
  status: string | null;
  role_name: string | null;
  cluster_id: string | null;
  max_connections: number | null;
}

/**
 * The ACTIVE tenants of one cluster, as the sampler needs them, kept without reading every
 * tenant row on every sample: the first read takes them all, later reads only the rows a
 * trigger stamped (tenants.roster_xid, quotas.roster_xid) with a transaction id at least
 * the previous read's horizon (see HORIZON): every transaction that had not committed when
 * that read's snapshot was taken has such an id, so a change committed late is still read,
 * and no clock is involved. A transaction left open in the control database holds the
 * horizon back, which costs re-reading the rows changed since, never missing one; one left
 * open in a tenant's database does not. A full read every
 * `fullRefreshMs` catches what no trigger sees (a row deleted by hand).
 */
export class TenantRoster {
  private readonly entries = new Map<string, RosterEntry>();
  /** Tenant id by role name: whose sessions these are. */
  private readonly byRole = new Map<string, string>();
  private allocatedSum = 0;
  private horizon: string | null = null;
  private lastRead: { changed: readonly string[]; full: boolean } = { changed: [], full: false };
  private fullReadAt = 0;
  readonly stats = { fullReads: 0, changeReads: 0, rowsRead: 0 };

  constructor(
    private readonly p: {
      db: ControlClient;
      clusterId: string;
      heartbeatMs: number;
      fullRefreshMs: number;
    },
  ) {}

  get tenants(): IterableIterator<RosterEntry> {
    return this.entries.values();
  }

  get size(): number {
    return this.entries.size;
  }

  get(tenantId: string): RosterEntry | undefined {
    return this.entries.get(tenantId);
  }

  /** The tenant whose role this is. */
  ofRole(roleName: string): RosterEntry | undefined {
    const id = this.byRole.get(roleName);
    return id === undefined ? undefined : this.entries.get(id);
  }

  /** The tenants the last refresh read and kept (new, changed, or merely re-read): every one of them after a full read. */
  get changed(): readonly string[] {
    return this.lastRead.changed;
  }

  /** Whether the last refresh read every tenant. */
  get lastReadWasFull(): boolean {
    return this.lastRead.full;
  }

  /** The sum of the tenants' quotas (kept as they come and go, not summed per sample). */
  get allocated(): number {
    return this.allocatedSum;
  }

  /** Forget everything: the next refresh reads every tenant (a new leader starts so). */
  reset(): void {
    this.entries.clear();
    this.byRole.clear();
    this.allocatedSum = 0;
    this.lastRead = { changed: [], full: false };
    this.horizon = null;
    this.fullReadAt = 0;
  }

  /** One statement: the changed rows (or all of them); returns the tenants that left the roster. */
  async refresh(): Promise<RemovedTenant[]> {
    const full = this.horizon === null || Date.now() - this.fullReadAt >= this.p.fullRefreshMs;
    const rows = await this.read(
      full
        ? Prisma.sql`t.cluster_id = ${this.p.clusterId}::uuid AND t.status = 'ACTIVE'`
        : Prisma.sql`t.id IN (SELECT id FROM tenants WHERE roster_xid >= ${this.horizon}::bigint
                              UNION SELECT tenant_id FROM quotas WHERE roster_xid >= ${this.horizon}::bigint)`,
    );
    const removed: RemovedTenant[] = [];
    const seen = new Set<string>();
    const changed: string[] = [];
    for (const r of rows) {
      if (!r.id) continue;
      seen.add(r.id);
      const belongs = r.status === 'ACTIVE' && r.cluster_id === this.p.clusterId && r.max_connections !== null;
      const known = this.entries.get(r.id);
      if (belongs) {
        this.set({
          id: r.id,
          slug: r.slug!,
          clusterId: r.cluster_id!,
          roleName: r.role_name!,
          maxConnections: r.max_connections!,
          phase: known?.phase ?? heartbeatPhase(r.id, this.p.heartbeatMs),
        });
        changed.push(r.id);
      } else if (known) {
        this.delete(known);
        removed.push({ tenantId: known.id, tenantSlug: known.slug, status: r.cluster_id === this.p.clusterId ? r.status : null });
      }
    }
    this.lastRead = { changed, full };
    if (full) {
      for (const [id, entry] of this.entries) {
        if (seen.has(id)) continue;
        this.delete(entry);
        removed.push({ tenantId: id, tenantSlug: entry.slug, status: null });
      }
      this.fullReadAt = Date.now();
      this.stats.fullReads++;
    } else {
      this.stats.changeReads++;
    }
    this.stats.rowsRead += rows.filter((r) => r.id).length;
    // The horizon only moves forward (a snapshot's xmin never goes back).
    const next = rows[0]?.horizon;
    if (next && (this.horizon === null || BigInt(next) > BigInt(this.horizon))) this.horizon = next;
    return removed;
  }

  private set(entry: RosterEntry): void {
    const known = this.entries.get(entry.id);
    if (known) this.delete(known);
    this.entries.set(entry.id, entry);
    this.byRole.set(entry.roleName, entry.id);
    this.allocatedSum += entry.maxConnections;
  }

  private delete(entry: RosterEntry): void {
    this.entries.delete(entry.id);
    if (this.byRole.get(entry.roleName) === entry.id) this.byRole.delete(entry.roleName);
    this.allocatedSum -= entry.maxConnections;
  }

  /** The tenants `which` selects (with the quota), and the next horizon even when there are none. */
  private read(which: Prisma.Sql): Promise<RosterRow[]> {
    return this.p.db.$queryRaw<RosterRow[]>`
      SELECT h.horizon, r.id::text, r.slug, r.status::text, r.role_name, r.cluster_id::text, r.max_connections
      FROM (${HORIZON}) h
      LEFT JOIN LATERAL (
        SELECT t.id, t.slug, t.status, t.role_name, t.cluster_id, q.max_connections
        FROM tenants t LEFT JOIN quotas q ON q.tenant_id = t.id
        WHERE ${which}
      ) r ON true`;
  }
}
