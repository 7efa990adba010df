import { randomUUID } from 'node:crypto';
import DataLoader from 'dataloader';
import type { ServerFacts } from '../db/cluster-admin.js';
import type { PoolStats } from '../domain/pools/pooler-driver.js';
import { availableExtensions } from '../sql/extensions.sql.js';

export interface OfferedExtension {
  name: string;
  default_version: string | null;
  comment: string | null;
  versions: string[];
}
import type { OperationContext } from '../domain/audit/audit-log.js';
import type { Deps } from '../domain/deps.js';
import { authenticate, type AuthenticationResult } from '../domain/keys/api-keys.js';
import { actorOf, canSeeTenant, type Viewer } from '../domain/keys/viewer.js';

export type AuthFailure = 'MISSING' | 'MALFORMED' | 'PLACEHOLDER' | Extract<AuthenticationResult, { failure: unknown }>['failure'];

/** Per request, read-only: who is calling, under which correlation id, with what. */
export interface GraphQLContext {
  readonly deps: Deps;
  readonly viewer: Viewer | null;
  readonly authFailure: AuthFailure | null;
  readonly correlationId: string;
  /** Whether the caller may see a tenant (false without a key). */
  readonly canSee: (tenant: { id: string }) => boolean;
  /** Actor and correlation id, as the domain records them. */
  readonly op: OperationContext;
  /** Live facts about each cluster, read at most once per request. */
  readonly clusterFacts: DataLoader<string, ServerFacts>;
  /** What each cluster's server offers (pg_available_extension_versions), read at most once per request. */
  readonly clusterExtensions: DataLoader<string, OfferedExtension[]>;
  /** Extensions Tenantry recorded per tenant, batched for a page. */
  readonly tenantExtensions: DataLoader<string, { name: string; version: string; recordedAt: Date }[]>;
  /** When the inventory last looked at each tenant database (null: never), batched for a page. */
  readonly tenantCheckedAt: DataLoader<string, Date | null>;
  /** The pooler's SHOW POOLS, read at most once per request (null without a reachable pooler). */
  readonly poolStats: () => Promise<Map<string, PoolStats> | null>;
}

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** For HTTP and SSE requests: the key and correlation id come in headers. */
export function createRequestContext(deps: Deps, request: Request): Promise<GraphQLContext> {
  return createContext(deps, { authorization: request.headers.get('authorization'), correlationId: request.headers.get('x-correlation-id') });
}

/** For any transport: `authorization` is "Bearer <key>" (a header, or graphql-ws connection params). */
export async function createContext(deps: Deps, given: { authorization: string | null; correlationId?: string | null }): Promise<GraphQLContext> {
  const correlationId = given.correlationId && CORRELATION_ID.test(given.correlationId) ? given.correlationId : randomUUID();
  const { viewer, authFailure } = await identify(deps, given.authorization);
  return {
    deps,
    viewer,
    authFailure,
    correlationId,
    op: { actor: actorOf(viewer), correlationId },
    canSee: (tenant) => viewer !== null && canSeeTenant(viewer, tenant.id),
    clusterFacts: new DataLoader(async (ids) =>
      Promise.all(ids.map(async (id) => (await deps.clusters.get(id)).facts().catch((e: Error) => e))),
    ),
    clusterExtensions: new DataLoader(async (ids) =>
      Promise.all(ids.map(async (id) => (await deps.clusters.get(id)).query<OfferedExtension>(availableExtensions).then((r) => r.rows, (e: Error) => e))),
    ),
    tenantExtensions: new DataLoader(async (ids) => {
      const rows = await deps.db.tenantExtension.findMany({ where: { tenantId: { in: [...ids] } } });
      return ids.map((id) => rows.filter((r) => r.tenantId === id));
    }),
    tenantCheckedAt: new DataLoader(async (ids) => {
      const rows = await deps.db.tenantInventory.findMany({ where: { tenantId: { in: [...ids] } }, select: { tenantId: true, checkedAt: true } });
      return ids.map((id) => rows.find((r) => r.tenantId === id)?.checkedAt ?? null);
    }),
    poolStats: once(() => deps.pools.driver?.stats().catch(() => null) ?? Promise.resolve(null)),
  };
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= fn());
}

export async function identify(deps: Deps, header: string | null): Promise<{ viewer: Viewer | null; authFailure: AuthFailure | null }> {
  if (!header) return { viewer: null, authFailure: 'MISSING' };
  // GraphiQL's starter header, sent unchanged: "Bearer <paste your admin key>".
  if (/^Bearer\s+<[^>]*>\s*$/i.test(header)) return { viewer: null, authFailure: 'PLACEHOLDER' };
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) return { viewer: null, authFailure: 'MALFORMED' };
  const result = await authenticate(deps.db, match[1]!);
  return 'viewer' in result ? { viewer: result.viewer, authFailure: null } : { viewer: null, authFailure: result.failure };
}
