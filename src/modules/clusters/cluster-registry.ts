import type { Cluster } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { ClusterAdmin, type SessionLimits } from '../../platform/db/cluster-admin.js';
import type { ClusterSecrets } from './cluster-secrets.js';

const DEFAULT_CLUSTER_NAME = 'default';

/** A cluster's admin URL cannot be had: its environment variable is unset, or its sealed URL cannot be opened. */
export class ClusterUrlError extends Error {
  override name = 'ClusterUrlError';
}

/** The managed servers, by control-database id, each with its admin connection pool. */
export class ClusterRegistry {
  private readonly admins = new Map<string, ClusterAdmin>();
  private defaultId: string | undefined;

  constructor(
    private readonly db: ControlClient,
    /** The server that holds the control database, used where a cluster stores no URL. */
    private readonly controlServerUrl: string,
    private readonly limits: SessionLimits,
    private readonly secrets?: ClusterSecrets,
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

  get defaultClusterId(): string {
    if (!this.defaultId) throw new Error('the default cluster is not registered yet');
    return this.defaultId;
  }

  async get(id: string): Promise<ClusterAdmin> {
    const existing = this.admins.get(id);
    if (existing) return existing;
    const row = await this.db.cluster.findUniqueOrThrow({ where: { id } });
    return this.adminFor(row);
  }

  /** The admin connection of a cluster row (made once, then kept until forget()). */
  async adminFor(row: Cluster): Promise<ClusterAdmin> {
    const existing = this.admins.get(row.id);
    if (existing) return existing;
    const url = await this.urlOf(row);
    const admin = this.admins.get(row.id) ?? new ClusterAdmin(row.id, row.name, url, holdsControlDatabase(row), this.limits);
    this.admins.set(row.id, admin);
    return admin;
  }

  /** Every registered cluster's row, by name. */
  rows(): Promise<Cluster[]> {
    return this.db.cluster.findMany({ orderBy: { name: 'asc' } });
  }

  /** The admin URL a cluster row leads to (for the control database's server: its URL). */
  async urlOf(row: Pick<Cluster, 'name' | 'connectionUrl' | 'connectionUrlEnv' | 'connectionUrlSealed'>): Promise<string> {
    if (row.connectionUrlEnv) {
      const url = process.env[row.connectionUrlEnv];
      if (!url) throw new ClusterUrlError(`cluster ${row.name}: environment variable ${row.connectionUrlEnv} (its admin URL) is not set`);
      return url;
    }
    if (row.connectionUrlSealed) {
      if (!this.secrets) throw new ClusterUrlError(`cluster ${row.name}: its URL is sealed and no cluster secret key is configured`);
      return this.secrets.open(row.connectionUrlSealed).catch((err: Error) => {
        throw new ClusterUrlError(`cluster ${row.name}: ${err.message}`);
      });
    }
    return row.connectionUrl ?? this.controlServerUrl;
  }

  /** Closes a cluster's admin connections and forgets them (its URL changed, or it was removed). */
  async forget(id: string): Promise<void> {
    const admin = this.admins.get(id);
    this.admins.delete(id);
    await admin?.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.admins.values()].map((a) => a.close()));
    this.admins.clear();
  }
}

/** The control database's own server stores no URL of any kind. */
export function holdsControlDatabase(row: Pick<Cluster, 'connectionUrl' | 'connectionUrlEnv' | 'connectionUrlSealed'>): boolean {
  return row.connectionUrl === null && row.connectionUrlEnv === null && row.connectionUrlSealed === null;
}
