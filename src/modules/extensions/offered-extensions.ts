import { LRUCache } from 'lru-cache';
import { availableExtensions } from './extensions.sql.js';
import type { ClusterRegistry } from '../clusters/index.js';

/** One extension a server offers (pg_available_extensions with every installable version). */
export interface OfferedExtension {
  name: string;
  default_version: string | null;
  comment: string | null;
  versions: string[];
}

/**
 * What each cluster offers, read at most once per `ttlMs` per cluster and shared by every
 * request (the catalog changes only when packages are installed on the server). Concurrent
 * requests for a cluster whose entry is missing share one read; a failed read is not kept.
 */
export class OfferedExtensions {
  private readonly cache: LRUCache<string, OfferedExtension[]>;
  /** Catalog reads sent to the clusters (how tests prove the cache). */
  readonly stats = { reads: 0 };

  constructor(p: { clusters: ClusterRegistry; ttlMs: number }) {
    this.cache = new LRUCache<string, OfferedExtension[]>({
      max: 1000,
      ttl: Math.max(p.ttlMs, 1),
      fetchMethod: async (clusterId) => {
        this.stats.reads++;
        return (await (await p.clusters.get(clusterId)).query<OfferedExtension>(availableExtensions)).rows;
      },
    });
  }

  async of(clusterId: string): Promise<OfferedExtension[]> {
    return (await this.cache.fetch(clusterId))!;
  }
}
