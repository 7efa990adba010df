import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { ServiceRegistry } from '../platform/services.js';
import type { OperationContext } from '../modules/audit/index.js';
import { ClusterRegistry, type ServerFacts } from '../modules/clusters/index.js';
import { OfferedExtensions, type OfferedExtension } from '../modules/extensions/index.js';
import { ApiKeyAuthenticator, RateLimitedError, type AuthFailure, type Credentials } from '../modules/keys/index.js';
import { actorOf, canSeeTenant, type Viewer } from '../platform/viewer.js';
import { PoolSync, type PoolStatsReading } from '../modules/pools/index.js';
import { clientAddressOf } from '../platform/http/client-address.js';
import { serviceUnavailableError } from './service-unavailable.js';

/** What the GraphQL layer is given by the composition root: settings, the logger, and the services by class. */
export interface ApiSetup {
  readonly config: Config;
  readonly logger: Logger;
  readonly services: ServiceRegistry;
}

/** Per request, read-only: who is calling, under which correlation id, with what. */
export interface GraphQLContext {
  readonly config: Config;
  readonly logger: Logger;
  /** The services, by class: `ctx.services.get(TenantLifecycle)`. */
  readonly services: ServiceRegistry;
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
  /** The pooler's SHOW POOLS, read at most once per request (null without a reachable pooler). */
  readonly poolStats: () => Promise<PoolStatsReading | null>;
  /**
   * One DataLoader per name and parameters for this request: a list field that takes
   * arguments (the same for every item of a page, as they come from one selection) is
   * batched over the page by asking this for its loader with its arguments as `params`.
   */
  loader<K, V>(name: string, params: unknown, load: (keys: readonly K[]) => Promise<readonly (V | Error)[]>): DataLoader<K, V>;
}

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** For HTTP and SSE requests: the key and correlation id come in headers, the address from the socket. */
export async function createRequestContext(api: ApiSetup, request: Request, req?: IncomingMessage): Promise<GraphQLContext> {
  return createContext(api, {
    authorization: request.headers.get('authorization'),
    correlationId: request.headers.get('x-correlation-id'),
    sourceAddress: clientAddressOf(api.config.TRUST_PROXY, req?.socket.remoteAddress, request.headers.get('x-forwarded-for')),
    transport: request.headers.get('accept')?.includes('text/event-stream') ? 'sse' : 'http',
  });
}

/**
 * For any transport: `authorization` is "Bearer <key>" (a header, or graphql-ws connection
 * params). An address over its failed-authentication limit gets a RATE_LIMITED error (HTTP 429).
 */
export async function createContext(api: ApiSetup, given: Omit<Credentials, 'correlationId'> & { correlationId?: string | null }): Promise<GraphQLContext> {
  const correlationId = given.correlationId && CORRELATION_ID.test(given.correlationId) ? given.correlationId : randomUUID();
  const { config, logger, services } = api;
  let identity;
  try {
    identity = await services.get(ApiKeyAuthenticator).authenticate({ ...given, correlationId });
  } catch (err) {
    if (err instanceof RateLimitedError) throw rateLimitedGraphQLError(err);
    const unavailable = serviceUnavailableError(api, err, correlationId);
    if (unavailable) throw unavailable;
    // Before any resolver runs, so error-correlation.ts cannot see it: logged and masked here.
    logger.error({ err, correlationId }, 'unexpected error while authenticating');
    throw new GraphQLError(`Unexpected error; correlation id ${correlationId}`, {
      extensions: { code: 'INTERNAL_SERVER_ERROR', correlationId, http: { status: 500 } },
    });
  }
  const { viewer, authFailure } = identity;
  const loaders = new Map<string, DataLoader<unknown, unknown>>();
  let poolStats: Promise<PoolStatsReading | null> | undefined;
  return {
    config,
    logger,
    services,
    viewer,
    authFailure,
    correlationId,
    op: { actor: actorOf(viewer), correlationId },
    canSee: (tenant) => viewer !== null && canSeeTenant(viewer, tenant.id),
    clusterFacts: new DataLoader(async (ids) =>
      Promise.all(ids.map(async (id) => (await services.get(ClusterRegistry).get(id)).facts().catch((e: Error) => e))),
    ),
    clusterExtensions: new DataLoader(async (ids) => Promise.all(ids.map((id) => services.get(OfferedExtensions).of(id).catch((e: Error) => e)))),
    poolStats: () => (poolStats ??= services.get(PoolSync).driver?.poolStats().catch(() => null) ?? Promise.resolve(null)),
    loader<K, V>(name: string, params: unknown, load: (keys: readonly K[]) => Promise<readonly (V | Error)[]>): DataLoader<K, V> {
      const key = `${name}:${JSON.stringify(params ?? null)}`;
      if (!loaders.has(key)) loaders.set(key, new DataLoader<K, V>(load) as DataLoader<unknown, unknown>);
      return loaders.get(key) as DataLoader<K, V>;
    },
  };
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
