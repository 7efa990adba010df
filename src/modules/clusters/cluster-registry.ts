import type { ControlClient } from '../../platform/db/control-client.js';
import { ClusterAdmin, type SessionLimits } from '../../platform/db/cluster-admin.js';

const DEFAULT_CLUSTER_NAME = 'default';

/** The managed servers, by control-database id, each with its admin connection pool. */
export class ClusterRegistry {
  private readonly admins = new Map<string, ClusterAdmin>();
  private defaultId: string | undefined;

  constructor(
    private readonly db: ControlClient,
    /** The server that holds the control database, used where a cluster stores no URL. */
    private readonly controlServerUrl: string,
    private readonly limits: SessionLimits,
  ) {}

  /** Makes sure the default cluster (the control database's own server) is registered. */
  async ensureDefault(): Promise<ClusterAdmin> {
    const row = await this.db.cluster.upsert({
      where: { name: DEFAULT_CLUSTER_NAME },
      create: { name: DEFAULT_CLUSTER_NAME, connectionUrl: null },
      update: {},
    });
    this.defaultId = row.id;
    return this.get(row.id);
  }

  get defaultCluster(): ClusterAdmin {
    if (!this.defaultId) throw new Error('the default cluster is not registered yet');
    return this.admins.get(this.defaultId)!;
  }

  async get(id: string): Promise<ClusterAdmin> {
    const existing = this.admins.get(id);
    if (existing) return existing;
    const row = await this.db.cluster.findUniqueOrThrow({ where: { id } });
    const admin = this.admins.get(id) ?? new ClusterAdmin(row.id, row.name, row.connectionUrl ?? this.controlServerUrl, row.connectionUrl === null, this.limits);
    this.admins.set(id, admin);
    return admin;
  }

  async close(): Promise<void> {
    await Promise.all([...this.admins.values()].map((a) => a.close()));
    this.admins.clear();
  }
}
