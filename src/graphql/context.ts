import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import type { Config } from '../platform/config.js';
import type { ServerFacts } from '../platform/db/cluster-admin.js';
import type { OperationContext } from '../modules/audit/audit-log.js';
import type { Deps } from '../deps.js';
import type { OfferedExtension } from '../modules/extensions/offered-extensions.js';
import { RateLimitedError, type AuthFailure, type Credentials } from '../modules/keys/key-authenticator.js';
import { actorOf, canSeeTenant, type Viewer } from '../platform/viewer.js';
import type { PoolStats } from '../modules/pools/pooler-driver.js';
import { clientAddressOf } from '../platform/http/client-address.js';
import { serviceUnavailableError } from './service-unavailable.js';

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
  /** What each cluster's server offers (pg_available_extension_versions), cached for CATALOG_CACHE_MS. */
  readonly clusterExtensions: DataLoader<string, OfferedExtension[]>;
  /** Extensions Tenantry recorded per tenant, batched for a page. */
  readonly tenantExtensions: DataLoader<string, { name: string; version: string; recordedAt: Date }[]>;
  /** When the inventory last looked at each tenant database (null: never), batched for a page. */
  readonly tenantCheckedAt: DataLoader<string, Date | null>;
  /** The pooler's SHOW POOLS, read at most once per request (null without a reachable pooler). */
  readonly poolStats: () => Promise<Map<string, PoolStats> | null>;
  /**
   * One DataLoader per name and parameters for this request: a list field that takes
   * arguments (the same for every item of a page, as they come from one selection) is
   * batched over the page by asking this for its loader with its arguments as `params`.
   */
  loader<K, V>(name: string, params: unknown, load: (keys: readonly K[]) => Promise<readonly (V | Error)[]>): DataLoader<K, V>;
}

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** For HTTP and SSE requests: the key and correlation id come in headers, the address from the socket. */
export async function createRequestContext(deps: Deps, request: Request, req?: IncomingMessage): Promise<GraphQLContext> {
  return createContext(deps, {
    authorization: request.headers.get('authorization'),
    correlationId: request.headers.get('x-correlation-id'),
    sourceAddress: sourceAddressOf(deps.config, req?.socket.remoteAddress, request.headers.get('x-forwarded-for')),
    transport: request.headers.get('accept')?.includes('text/event-stream') ? 'sse' : 'http',
  });
}

/**
 * For any transport: `authorization` is "Bearer <key>" (a header, or graphql-ws connection
 * params). An address over its failed-authentication limit gets a RATE_LIMITED error (HTTP 429).
 */
export async function createContext(
  deps: Deps,
  given: Omit<Credentials, 'correlationId'> & { correlationId?: string | null },
): Promise<GraphQLContext> {
  const correlationId = given.correlationId && CORRELATION_ID.test(given.correlationId) ? given.correlationId : randomUUID();
  let identity;
  try {
    identity = await deps.auth.authenticate({ ...given, correlationId });
  } catch (err) {
    if (err instanceof RateLimitedError) throw rateLimitedGraphQLError(err);
    const unavailable = serviceUnavailableError(deps, err, correlationId);
    if (unavailable) throw unavailable;
    // Before any resolver runs, so error-correlation.ts cannot see it: logged and masked here.
    deps.logger.error({ err, correlationId }, 'unexpected error while authenticating');
    throw new GraphQLError(`Unexpected error; correlation id ${correlationId}`, {
      extensions: { code: 'INTERNAL_SERVER_ERROR', correlationId, http: { status: 500 } },
    });
  }
  const { viewer, authFailure } = identity;
  const loaders = new Map<string, DataLoader<unknown, unknown>>();
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
    clusterExtensions: new DataLoader(async (ids) => Promise.all(ids.map((id) => deps.offeredExtensions.of(id).catch((e: Error) => e)))),
    tenantExtensions: new DataLoader(async (ids) => {
      const rows = await deps.db.tenantExtension.findMany({ where: { tenantId: { in: [...ids] } } });
      return ids.map((id) => rows.filter((r) => r.tenantId === id));
    }),
    tenantCheckedAt: new DataLoader(async (ids) => {
      const rows = await deps.db.tenantInventory.findMany({ where: { tenantId: { in: [...ids] } }, select: { tenantId: true, checkedAt: true } });
      return ids.map((id) => rows.find((r) => r.tenantId === id)?.checkedAt ?? null);
    }),
    poolStats: once(() => deps.pools.driver?.stats().catch(() => null) ?? Promise.resolve(null)),
    loader<K, V>(name: string, params: unknown, load: (keys: readonly K[]) => Promise<readonly (V | Error)[]>): DataLoader<K, V> {
      const key = `${name}:${JSON.stringify(params ?? null)}`;
      let loader = loaders.get(key) as DataLoader<K, V> | undefined;
      if (!loader) {
        loader = new DataLoader<K, V>(load);
        loaders.set(key, loader as DataLoader<unknown, unknown>);
      }
      return loader;
    },
  };
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= fn());
}

/** RATE_LIMITED, answered with HTTP 429 and Retry-After. */
export function rateLimitedGraphQLError(err: RateLimitedError): GraphQLError {
  return new GraphQLError(err.message, {
    extensions: {
      code: 'RATE_LIMITED',
      retryAfterSeconds: err.retryAfterSeconds,
      http: { status: 429, headers: { 'retry-after': String(err.retryAfterSeconds) } },
    },
  });
}

/**
 * Where a request comes from: the socket's address, or with TRUST_PROXY the address the
 * trusted proxy saw (src/http/client-address.ts). IPv4-mapped IPv6 is shortened.
 */
export function sourceAddressOf(config: Pick<Config, 'TRUST_PROXY'>, remoteAddress: string | undefined, forwardedFor: string | null | undefined): string {
  return clientAddressOf(config.TRUST_PROXY, remoteAddress, forwardedFor);
}
