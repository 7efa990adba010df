import { setTimeout as delay } from 'node:timers/promises';
import type { ControlClient } from '../../platform/db/control-client.js';
import { UserError } from '../../platform/errors.js';
import type { OperationContext } from '../audit/index.js';
import type { ClusterPlacement } from '../quotas/index.js';
import type { MoveMode, TenantMoves } from './tenant-moves.js';

/** How often a drain looks at a move another server runs (after a restart, recovery may run it elsewhere). */
const POLL_MS = 500;

/**
 * A drain's way to move one tenant off a cluster (FleetOperations' ClusterEvacuation port):
 * placement picks the target among the other clusters, the move runs as any moveTenant does,
 * and this waits for it to end. Run again (a resumed drain), it waits for the move already
 * under way, or answers at once for a tenant that has left the cluster.
 */
export class ClusterEvacuation {
  constructor(private readonly p: { db: ControlClient; moves: TenantMoves; placement: ClusterPlacement }) {}

  async moveOff(op: OperationContext, p: { slug: string; fromClusterId: string; mode: MoveMode }, signal: AbortSignal): Promise<string> {
    const { db, moves, placement } = this.p;
    const tenant = await db.tenant.findUnique({ where: { slug: p.slug }, include: { quota: true, cluster: { select: { name: true } } } });
    if (!tenant || tenant.status === 'DEPROVISIONED') throw new UserError('NOT_FOUND', `tenant ${p.slug} is gone`, 'slug');
    let move = await db.tenantMove.findFirst({ where: { tenantId: tenant.id, status: 'RUNNING' } });
    if (!move && tenant.clusterId !== p.fromClusterId) return `already on cluster ${tenant.cluster.name}`;
    if (!move) {
      const target = await placement.choose({ quota: tenant.quota?.maxConnections ?? 0, exclude: [p.fromClusterId], slug: p.slug });
      move = (await moves.moveTenant(op, { slug: p.slug, targetClusterId: target.id, mode: p.mode }, () => true)).move;
    }
    await moves.settled(move.id);
    for (;;) {
      const now = await db.tenantMove.findUniqueOrThrow({ where: { id: move.id }, include: { target: { select: { name: true } } } });
      if (now.status === 'SUCCEEDED') return `moved ${p.mode} to cluster ${now.target.name} (move ${now.id})`;
      if (now.status !== 'RUNNING') throw new UserError('MOVE_FAILED', `move ${now.id} to cluster ${now.target.name} ended ${now.status}: ${now.error ?? 'no error recorded'}`, 'slug');
      await delay(POLL_MS, undefined, { signal });
    }
  }
}
