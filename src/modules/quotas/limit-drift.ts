import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { Config } from '../../platform/config.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import type { Logger } from '../../platform/logger.js';
import { disableLogin, enableLogin, tenantLimits } from '../tenants/index.js';
import { recordAuditEvent } from '../audit/index.js';
import type { ConnectionLimits } from './connection-limits.js';

const OP = { actor: 'reconciler', correlationId: 'reconciler' };

export interface ClusterStateRepair {
  slug: string;
  differences: string[];
}

interface Observed {
  name: string;
  role_limit: number;
  can_login: boolean;
  database_limit: number | null;
}

/** PostgreSQL's connection limits and logins against the records: found and repaired by recovery's pass. */
export class LimitDrift {
  constructor(
    private readonly p: {
      db: ControlClient;
      config: Pick<Config, 'CONNECTION_RESERVE'>;
      logger: Logger;
      locks: TenantLocks;
      connectionLimits: ConnectionLimits;
    },
  ) {}

  /**
   * Compares what PostgreSQL enforces for every active or suspended tenant of a cluster with
   * what the control database records - the role's CONNECTION LIMIT (the quota), the
   * database's (quota + CONNECTION_RESERVE), and whether the role may log in (ACTIVE only) -
   * and repairs any difference, reported as drift with an audit event. One catalog query per
   * cluster; only drifted tenants are touched, each under its lock (a tenant being changed
   * right now is left for the next pass).
   */
  async reconcileClusterState(cluster: ClusterAdmin): Promise<ClusterStateRepair[]> {
    const { db, locks, connectionLimits, logger } = this.p;
    const tenants = await db.tenant.findMany({
      where: { clusterId: cluster.id, status: { in: ['ACTIVE', 'SUSPENDED'] } },
      select: { id: true, slug: true, roleName: true, databaseName: true, status: true, quota: { select: { maxConnections: true } } },
    });
    if (tenants.length === 0) return [];
    const { rows } = await cluster.query<Observed>(tenantLimits, [tenants.map((t) => t.roleName)]);
    const observed = new Map(rows.map((r) => [r.name, r]));
    const repairs: ClusterStateRepair[] = [];
    for (const t of tenants) {
      const quota = t.quota?.maxConnections;
      const seen = observed.get(t.roleName);
      if (quota === undefined || !seen) continue; // a missing role or database is the inventory's to report
      if (this.differencesOf(t, quota, seen).length === 0) continue;
      const result = await locks.tryTenantLock(t, async () => {
        // Read again under the lock: a change that just finished is not drift.
        const now = await db.tenant.findUnique({ where: { id: t.id }, include: { quota: true } });
        const again = (await cluster.query<Observed>(tenantLimits, [[t.roleName]])).rows[0];
        // Moved away meanwhile: what is left on this cluster is the move's (kept NOLOGIN), not drift.
        if (!now?.quota || !again || now.clusterId !== cluster.id || (now.status !== 'ACTIVE' && now.status !== 'SUSPENDED')) return null;
        const differences = this.differencesOf(now, now.quota.maxConnections, again);
        if (differences.length === 0) return null;
        await recordAuditEvent(db, OP, { category: 'tenant', action: 'tenant.drift.repaired', tenant: now, subject: now.roleName, metadata: { differences } });
        await connectionLimits.applyConnectionLimits(cluster, now, now.quota.maxConnections);
        await cluster.query(now.status === 'ACTIVE' ? enableLogin(now.roleName) : disableLogin(now.roleName));
        logger.warn({ tenant: now.slug, differences }, 'PostgreSQL differed from the records; repaired');
        return { slug: now.slug, differences };
      });
      if (result && !('busy' in result)) repairs.push(result);
    }
    return repairs;
  }

  private differencesOf(t: { status: string }, quota: number, seen: Observed): string[] {
    const out: string[] = [];
    if (seen.role_limit !== quota) out.push(`role CONNECTION LIMIT is ${seen.role_limit}, recorded quota ${quota}`);
    const dbLimit = quota + this.p.config.CONNECTION_RESERVE;
    if (seen.database_limit !== null && seen.database_limit !== dbLimit) out.push(`database CONNECTION LIMIT is ${seen.database_limit}, expected ${dbLimit}`);
    if (seen.can_login !== (t.status === 'ACTIVE')) out.push(`role ${seen.can_login ? 'may' : 'may not'} log in, but the tenant is ${t.status}`);
    return out;
  }
}
