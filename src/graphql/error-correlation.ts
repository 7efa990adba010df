import { PothosValidationError } from '@pothos/core';
import type { Plugin } from 'graphql-yoga';
import { GraphQLError } from 'graphql';
import type { Logger } from '../platform/logger.js';
import type { GraphQLContext } from './context.js';
import { serviceUnavailableError } from './service-unavailable.js';

/**
 * Unexpected errors (anything a resolver throws that is not a GraphQLError) are logged
 * with the request's correlation id and reach the client masked, carrying that id so
 * an operator can find the log line. The id is also sent as the X-Correlation-ID header.
 * A database that could not be reached is no mystery: SERVICE_UNAVAILABLE (503, retryable).
 * Pothos's own input checks (a malformed global ID) carry no code: they get BAD_USER_INPUT.
 */
export function useErrorCorrelation(logger: Logger): Plugin<GraphQLContext> {
  const correlationIds = new WeakMap<Request, string>();
  return {
    onExecute({ args }) {
      const ctx = args.contextValue as GraphQLContext & { request?: Request };
      if (ctx.request) correlationIds.set(ctx.request, ctx.correlationId);
      return {
        onExecuteDone({ result, setResult }) {
          if (!('errors' in result) || !result.errors?.length) return;
          setResult({
            ...result,
            errors: result.errors.map((error) => {
              const original = error.originalError;
              if (original instanceof PothosValidationError && error.extensions.code === undefined) {
                return new GraphQLError(error.message, { path: error.path, nodes: error.nodes, extensions: { ...error.extensions, code: 'BAD_USER_INPUT' } });
              }
              if (!original || original instanceof GraphQLError) return error;
              const unavailable = serviceUnavailableError(ctx, original, ctx.correlationId, { path: error.path, nodes: error.nodes });
              if (unavailable) return unavailable;
              logger.error({ err: original, correlationId: ctx.correlationId, path: error.path?.join('.') }, 'unexpected error');
              return new GraphQLError(`Unexpected error; correlation id ${ctx.correlationId}`, {
                path: error.path,
                nodes: error.nodes,
                extensions: { code: 'INTERNAL_SERVER_ERROR', correlationId: ctx.correlationId },
              });
            }),
          });
        },
      };
    },
    onResponse({ request, response }) {
      const id = correlationIds.get(request);
      if (id) response.headers.set('x-correlation-id', id);
    },
  };
}
