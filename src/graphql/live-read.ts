import { GraphQLError } from 'graphql';
import { LiveReadBudget, LiveReadsBusyError } from '../platform/live-read-budget.js';
import type { GraphQLContext } from './context.js';

/** What a field that reads a tenant database or pg_stat_activity now costs (GRAPHQL_LIVE_FIELD_COST), against 1 for a recorded one. */
export function liveFieldCost(ctx: GraphQLContext): number {
  return ctx.config.GRAPHQL_LIVE_FIELD_COST;
}

/** Whose share of the live-read budget a request draws on: its tenant (all of that tenant's keys together), or its admin key. */
function requesterOf(ctx: GraphQLContext): string {
  const viewer = ctx.viewer;
  if (!viewer) return 'anonymous';
  return viewer.tenantId ? `tenant:${viewer.tenantId}` : `key:${viewer.keyId}`;
}

/**
 * Runs a live read inside the cluster's shared budget, in the caller's fair share. Past its
 * share the field fails with SERVER_BUSY (retryable: the same request succeeds once the
 * burst has passed).
 */
export async function liveRead<T>(ctx: GraphQLContext, clusterId: string, read: () => Promise<T>): Promise<T> {
  try {
    return await ctx.services.get(LiveReadBudget).run(clusterId, requesterOf(ctx), read);
  } catch (err) {
    if (err instanceof LiveReadsBusyError) {
      throw new GraphQLError(err.message, { extensions: { code: 'SERVER_BUSY', retryable: true, limit: 'LIVE_READ_QUEUE' } });
    }
    throw err;
  }
}
