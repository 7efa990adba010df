import { GraphQLError, type ASTNode } from 'graphql';
import { isFromControlClient, isUnreachable } from '../platform/db/reachability.js';
import type { Logger } from '../platform/logger.js';
import type { ServiceRegistry } from '../platform/services.js';
import { ReadinessMonitor } from '../modules/health/index.js';

/**
 * How long a client is told to wait before retrying while a database is unreachable. Readiness
 * re-checks every second meanwhile, so a retry after this finds the service as it is by then.
 */
export const RETRY_AFTER_SECONDS = 5;

/**
 * SERVICE_UNAVAILABLE (HTTP 503, Retry-After) for a failure that only means a database could not
 * be reached; null for anything else. It is logged (a warning: nothing is broken but the
 * database) under the correlation id the caller gets, and readiness is asked to look again at
 * once, so /health/ready follows the outage instead of the next READINESS_INTERVAL_MS.
 */
export function serviceUnavailableError(
  api: { logger: Logger; services: ServiceRegistry },
  err: unknown,
  correlationId: string,
  at: { path?: readonly (string | number)[]; nodes?: readonly ASTNode[] } = {},
): GraphQLError | null {
  if (!isUnreachable(err)) return null;
  api.logger.warn({ err, correlationId, path: at.path?.join('.') }, 'a database could not be reached');
  api.services.get(ReadinessMonitor).recheckSoon();
  const what = isFromControlClient(err) ? 'the control database' : 'a PostgreSQL server it needs';
  return new GraphQLError(`Tenantry cannot reach ${what} right now; retry in ${RETRY_AFTER_SECONDS} s (correlation id ${correlationId})`, {
    ...at,
    extensions: {
      code: 'SERVICE_UNAVAILABLE',
      retryable: true,
      retryAfterSeconds: RETRY_AFTER_SECONDS,
      correlationId,
      http: { status: 503, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } },
    },
  });
}
