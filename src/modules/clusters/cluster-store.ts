import type { Cluster } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsInOrder } from '../../platform/db/rows-in-order.js';

export type { Cluster };

/** The clusters table, as lists and lookups read it (ClusterRegistry holds the admin connections). */
export class ClusterStore {
  constructor(private readonly p: { db: ControlClient }) {}

  /** One query for any number of clusters; results in the order of `ids`. */
  async byIds(ids: readonly string[]): Promise<(Cluster | null)[]> {
    const rows = await this.p.db.cluster.findMany({ where: { id: { in: [...ids] } } });
    return rowsInOrder(ids, rows, (r) => r.id);
  }

  list(): Promise<Cluster[]> {
    return this.p.db.cluster.findMany({ orderBy: { name: 'asc' } });
  }
}
