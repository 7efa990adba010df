import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { TenantryYoga } from '../graphql/yoga.js';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Deps } from '../domain/deps.js';
import { RateLimitedError } from '../domain/keys/key-authenticator.js';
import { createContext, sourceAddressOf } from '../graphql/context.js';

type Yoga = TenantryYoga;

/** The key a graphql-ws client sends in connection_init: `{ "authorization": "Bearer tnry_…" }` (any case). */
function authorizationOf(params: Readonly<Record<string, unknown>> | undefined): string | null {
  const value = params && Object.entries(params).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  return typeof value === 'string' ? value : null;
}

/** Close code for a socket whose address is over its failed-authentication limit. */
export const CLOSE_RATE_LIMITED = 4429;

function headerOf(request: IncomingMessage, name: string): string | null {
  const value = request.headers[name];
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}

/**
 * graphql-ws on the same port and path as HTTP. The key is checked at connection_init
 * (a bad one closes the socket with 4403; an address over its failed-authentication limit
 * gets 4429 "RATE_LIMITED"), again for each operation (a key revoked since is refused), and a
 * socket holds at most MAX_SUBSCRIPTIONS_PER_SOCKET operations.
 */
export function serveWebSockets(server: Server, yoga: Yoga, deps: Deps): { close(): Promise<void> } {
  const wss = new WebSocketServer({ server, path: '/graphql' });
  const open = new WeakMap<WebSocket, Set<string>>();
  const limit = deps.config.MAX_SUBSCRIPTIONS_PER_SOCKET;
  const sourceOf = (request: IncomingMessage) => sourceAddressOf(deps.config, request.socket.remoteAddress, headerOf(request, 'x-forwarded-for'));

  const disposable = useServer<Record<string, unknown>>(
    {
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => never }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => never }).subscribe(args),
      onConnect: async (ctx) => {
        try {
          const { viewer } = await deps.auth.authenticate({
            authorization: authorizationOf(ctx.connectionParams),
            sourceAddress: sourceOf(ctx.extra.request),
            transport: 'graphql-ws',
            correlationId: randomUUID(),
          });
          return viewer !== null;
        } catch (err) {
          if (!(err instanceof RateLimitedError)) throw err;
          ctx.extra.socket.close(CLOSE_RATE_LIMITED, `RATE_LIMITED: retry in ${err.retryAfterSeconds} s`);
          return false;
        }
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
        // Counted before anything is awaited, so operations started together cannot all slip under the limit.
        ids.add(id);
        let contextValue;
        try {
          contextValue = await createContext(deps, {
            authorization: authorizationOf(ctx.connectionParams),
            sourceAddress: sourceOf(ctx.extra.request),
            transport: 'graphql-ws',
          });
        } catch (err) {
          ids.delete(id);
          if (err instanceof GraphQLError) return [err];
          throw err;
        }
        return { schema, document, operationName: payload.operationName, variableValues: payload.variables, contextValue, rootValue: { execute, subscribe } };
      },
      onComplete: (ctx, id) => {
        open.get(ctx.extra.socket)?.delete(id);
      },
      onError: (ctx, id) => {
        open.get(ctx.extra.socket)?.delete(id);
      },
    },
    wss,
  );
  return {
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
