import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { getOperationAST, GraphQLError, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { TenantryYoga } from '../graphql/yoga.js';
import { WebSocketServer, type WebSocket } from 'ws';
import { ApiKeyAuthenticator, RateLimitedError } from '../modules/keys/index.js';
import { createContext, type ApiSetup, type GraphQLContext } from '../graphql/context.js';
import { clientAddressOf } from '../platform/http/client-address.js';
import { RETRY_AFTER_SECONDS, serviceUnavailableError } from '../graphql/service-unavailable.js';
import { verifyWebSocketOrigin } from '../platform/http/origin-policy.js';
import { CLOSE_FORBIDDEN, CLOSE_TOO_SLOW, GRACE_MS, type LiveSessions } from '../graphql/live-sessions.js';
import { eventLoopStalls } from '../platform/event-loop-stalls.js';
import { SHUTTING_DOWN_RETRY_AFTER_SECONDS, shuttingDownError, type InFlightWork } from './in-flight-work.js';

/** How long closing the service waits for sockets to answer the close handshake before cutting them. */
const CLOSE_WAIT_MS = 2000;

/** Close code for the sockets of a server that is stopping (graphql-ws's own, on dispose). */
const CLOSE_GOING_AWAY = 1001;

/** Close code for a socket whose address is over its failed-authentication limit. */
export const CLOSE_RATE_LIMITED = 4429;
/** Close code (RFC 6455 "Try Again Later") for a connection_init that could not reach the control database. */
export const CLOSE_TRY_AGAIN_LATER = 1013;

/** The key a graphql-ws client sends in connection_init: `{ "authorization": "Bearer tnry_…" }` (any case). */
function authorizationOf(params: Readonly<Record<string, unknown>> | undefined): string | null {
  const value = params && Object.entries(params).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  return typeof value === 'string' ? value : null;
}

export function headerOf(request: IncomingMessage, name: string): string | null {
  const value = request.headers[name];
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}

/** Closes with a code the client sees; cut if it does not answer within the wait (a slow one gets longer to drain). */
function closeSocket(socket: WebSocket, code: number, reason: string, waitMs = CLOSE_WAIT_MS): void {
  if (socket.readyState === socket.CLOSED || socket.readyState === socket.CLOSING) return;
  socket.close(code, reason);
  setTimeout(() => socket.terminate(), waitMs).unref();
}

/**
 * graphql-ws on the same port and path as HTTP. The key is checked at connection_init (a bad
 * one closes the socket with 4403; an address over its failed-authentication limit gets 4429
 * "RATE_LIMITED"), again for each operation, and a socket holds at most
 * MAX_SUBSCRIPTIONS_PER_SOCKET operations. The socket is bound to its key: revoked or
 * expired, the socket is closed with 4403. A socket holding more than WS_MAX_BUFFERED_BYTES
 * unsent, or one of whose subscriptions fell too far behind, is closed with 1013, as is one whose
 * connection_init could not reach the control database ("SERVICE_UNAVAILABLE"). An upgrade from
 * a browser origin CORS_ORIGINS does not allow is refused (403); a message over MAX_REQUEST_BYTES
 * closes the socket (1009).
 *
 * Queries and mutations count as work under way (`work`), which stopping waits for. Once
 * the service stops taking work, a new connection is closed at connection_init with 1001
 * (going away: graphql-ws clients retry after a close code, but give up on an HTTP error
 * answering the upgrade) and a query or mutation on an open socket gets SHUTTING_DOWN.
 */
export function serveWebSockets(server: Server, yoga: TenantryYoga, api: ApiSetup, live: LiveSessions, work: InFlightWork): { close(): Promise<void>; readonly sockets: number } {
  const wss = new WebSocketServer({
    server,
    path: '/graphql',
    // A bigger message closes the socket with 1009, as a bigger HTTP body gets 413.
    maxPayload: api.config.MAX_REQUEST_BYTES,
    verifyClient: verifyWebSocketOrigin(api.config.CORS_ORIGINS),
  });
  const open = new WeakMap<WebSocket, Set<string>>();
  const unbind = new WeakMap<WebSocket, () => void>();
  /** Per socket, its queries and mutations under way (id → the work item, their context). */
  const underWay = new WeakMap<WebSocket, Map<string, object>>();
  const finishWork = (socket: WebSocket, id: string) => {
    open.get(socket)?.delete(id);
    const item = underWay.get(socket)?.get(id);
    if (!item) return;
    underWay.get(socket)!.delete(id);
    // graphql-ws calls onComplete just before it writes `complete`: stopping may close the socket once that is written.
    setImmediate(() => work.finish(item));
  };
  const limit = api.config.MAX_SUBSCRIPTIONS_PER_SOCKET;
  const maxBuffered = api.config.WS_MAX_BUFFERED_BYTES;
  const sourceOf = (request: IncomingMessage) => clientAddressOf(api.config.TRUST_PROXY, request.socket.remoteAddress, headerOf(request, 'x-forwarded-for'));
  // Bytes that piled up while this server stalled (SIGSTOP, a blocked loop) are not the client's doing.
  const overBuffered = (socket: WebSocket) => socket.bufferedAmount > maxBuffered && !eventLoopStalls.recovering();
  const tooSlow = (socket: WebSocket, why: string) => {
    api.logger.info({ why }, 'closing a slow graphql-ws socket (1013)');
    closeSocket(socket, CLOSE_TOO_SLOW, `subscriber too slow: ${why}`, GRACE_MS);
  };

  const disposable = useServer<Record<string, unknown>>(
    {
      execute: async (args) => {
        try {
          return await (args.rootValue as { execute: (a: ExecutionArgs) => Promise<never> }).execute(args);
        } catch (err) {
          // graphql-ws reports no completion for an operation that threw.
          work.finish(args.contextValue as object);
          throw err;
        }
      },
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => never }).subscribe(args),
      onConnect: async (ctx) => {
        const socket = ctx.extra.socket;
        if (!work.accepting) {
          socket.close(CLOSE_GOING_AWAY, `Tenantry is shutting down: reconnect in ${SHUTTING_DOWN_RETRY_AFTER_SECONDS} s`);
          return false;
        }
        let viewer;
        const correlationId = randomUUID();
        try {
          ({ viewer } = await api.services.get(ApiKeyAuthenticator).authenticate({
            authorization: authorizationOf(ctx.connectionParams),
            sourceAddress: sourceOf(ctx.extra.request),
            transport: 'graphql-ws',
            correlationId,
          }));
        } catch (err) {
          const unavailable = err instanceof RateLimitedError ? null : serviceUnavailableError(api, err, correlationId);
          if (unavailable) socket.close(CLOSE_TRY_AGAIN_LATER, `SERVICE_UNAVAILABLE: retry in ${RETRY_AFTER_SECONDS} s (correlation id ${correlationId})`);
          else if (!(err instanceof RateLimitedError)) throw err;
          else socket.close(CLOSE_RATE_LIMITED, `RATE_LIMITED: retry in ${err.retryAfterSeconds} s`);
          return false;
        }
        if (!viewer) return false;
        // Gone while its key was checked: its 'close' has been heard already, so nothing would unbind it.
        if (socket.readyState === socket.CLOSED) return false;
        unbind.set(
          socket,
          live.open(viewer, 'socket', (reason) => {
            if (reason === 'shutdown') return; // closing the service closes every socket with 1001
            // After the operations' own KEY_REVOKED / KEY_EXPIRED results, already on their way.
            setImmediate(() => closeSocket(socket, CLOSE_FORBIDDEN, reason.message));
          }),
        );
        socket.once('close', () => unbind.get(socket)?.());
        return true;
      },
      onSubscribe: async (ctx, id, payload) => {
        const ids = open.get(ctx.extra.socket) ?? new Set<string>();
        open.set(ctx.extra.socket, ids);
        if (ids.size >= limit) {
          return [new GraphQLError(`at most ${limit} operations per connection (MAX_SUBSCRIPTIONS_PER_SOCKET)`, { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } })];
        }
        const { schema, execute, subscribe, parse, validate } = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params: payload });
        let document;
        try {
          document = parse(payload.query);
        } catch (err) {
          // A syntax error, or a document over GRAPHQL_MAX_TOKENS: an error for this operation, not the socket.
          if (err instanceof GraphQLError) return [err];
          throw err;
        }
        const errors = validate(schema, document);
        if (errors.length) return errors;
        // Queries and mutations only: a subscription is let through (once this server goes away its socket closes and the client subscribes again).
        const counted = getOperationAST(document, payload.operationName)?.operation !== 'subscription';
        // Counted before anything is awaited, so operations started together cannot all slip under the limit.
        ids.add(id);
        let contextValue: GraphQLContext;
        try {
          contextValue = await createContext(api, {
            authorization: authorizationOf(ctx.connectionParams),
            sourceAddress: sourceOf(ctx.extra.request),
            transport: 'graphql-ws',
          });
        } catch (err) {
          ids.delete(id);
          if (err instanceof GraphQLError) return [err];
          throw err;
        }
        const socket = ctx.extra.socket;
        // Under way until its result and completion are sent; refused once the service is stopping.
        if (counted) {
          if (!work.admit(contextValue)) {
            ids.delete(id);
            return [new GraphQLError(shuttingDownError.message, { extensions: shuttingDownError.extensions })];
          }
          const items = underWay.get(socket) ?? new Map<string, object>();
          underWay.set(socket, items.set(id, contextValue));
        }
        live.setTransport(contextValue, {
          ended: (reason) => {
            // Revocation and expiry close the socket through its own binding (4403).
            if (reason.code === 'SUBSCRIBER_TOO_SLOW') tooSlow(socket, 'a subscription fell too far behind');
          },
          // Closing the service closes every socket with 1001 (close(), below).
          goingAway: () => {},
        });
        return { schema, document, operationName: payload.operationName, variableValues: payload.variables, contextValue, rootValue: { execute, subscribe } };
      },
      onNext: (ctx) => {
        // graphql-ws waits for each send of one operation, but a socket carries many.
        const socket = ctx.extra.socket;
        if (overBuffered(socket)) tooSlow(socket, `${socket.bufferedAmount} bytes unsent`);
      },
      onComplete: (ctx, id) => finishWork(ctx.extra.socket, id),
      onError: (ctx, id) => finishWork(ctx.extra.socket, id),
    },
    wss,
  );
  // A socket whose every operation waits on a send never reaches onNext: look at all of them every second too.
  const sweep = setInterval(() => {
    for (const socket of wss.clients) if (overBuffered(socket)) tooSlow(socket, `${socket.bufferedAmount} bytes unsent`);
  }, 1000).unref();
  return {
    get sockets() {
      return wss.clients.size;
    },
    /** Every socket gets 1001 (going away), its subscriptions not completed (clients resubscribe); those that do not answer are cut. */
    close: async () => {
      clearInterval(sweep);
      const clients = [...wss.clients];
      const cut = setTimeout(() => {
        for (const client of clients) client.terminate();
      }, CLOSE_WAIT_MS);
      await disposable.dispose();
      clearTimeout(cut);
    },
  };
}
