import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createGraphQLError, processRegularResult, type Plugin } from 'graphql-yoga';

/**
 * What the HTTP side of /graphql refuses, each with a code and a sentence a client can act on
 * (yoga answers some of these with an empty body or no code).
 */

/** Header names any of which lets a "simple" request (GET, form or text/plain POST) through CSRF prevention. */
export const CSRF_HEADERS = ['x-graphql-yoga-csrf', 'graphql-require-preflight'];

/** yoga's CSRF prevention, its 403 carrying CSRF_HEADER_REQUIRED and naming the headers. */
export function useCsrfPreventionWithCode(): Plugin {
  const inner = useCSRFPrevention({ requestHeaders: CSRF_HEADERS });
  return {
    onRequestParse(payload) {
      try {
        inner.onRequestParse?.(payload);
      } catch {
        throw createGraphQLError(
          `Required CSRF header not present: a GET, or a form-encoded, multipart or text/plain POST, needs one of the headers ${CSRF_HEADERS.join(', ')} (CSRF_PREVENTION); a JSON POST does not`,
          { extensions: { code: 'CSRF_HEADER_REQUIRED', http: { status: 403 } } },
        );
      }
    },
  };
}

const SUBSCRIPTION_TRANSPORTS =
  "Server-Sent Events (a POST or GET with Accept: text/event-stream: graphql-sse's distinct-connections mode, its createClient's default) " +
  'or graphql-ws over WebSocket on the same path';

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator] === 'function';
}

/**
 * Says which transports are served when a request uses another: a method other than GET and
 * POST (graphql-sse's single-connection mode reserves its stream with PUT, and is not served)
 * gets 405 METHOD_NOT_ALLOWED; a subscription whose request does not accept an event stream
 * gets 406 NOT_ACCEPTABLE with a JSON body (yoga's is empty), and the subscription it set up is ended.
 */
export function useServedTransports(): Plugin {
  return {
    onRequestParse({ request }) {
      if (request.method === 'GET' || request.method === 'POST') return;
      throw createGraphQLError(
        `${request.method} is not served on /graphql, which takes GET and POST; subscriptions stream over ${SUBSCRIPTION_TRANSPORTS}. graphql-sse's single-connection mode (which reserves a stream with PUT) is not served`,
        { extensions: { code: 'METHOD_NOT_ALLOWED', http: { status: 405, headers: { allow: 'GET, POST' } } } },
      );
    },
    onResultProcess({ request, result, resultProcessor, setResult, setResultProcessor }) {
      if (resultProcessor || !isAsyncIterable(result)) return;
      // Nobody will read it: end it now, so it holds nothing.
      void Promise.resolve(result[Symbol.asyncIterator]().return?.()).catch(() => undefined);
      setResult({
        errors: [
          createGraphQLError(`A subscription streams its results over ${SUBSCRIPTION_TRANSPORTS}; this request accepts only ${request.headers.get('accept')}`, {
            extensions: { code: 'NOT_ACCEPTABLE', http: { status: 406, headers: { accept: 'text/event-stream' } } },
          }),
        ],
      });
      setResultProcessor(processRegularResult, 'application/json');
    },
  };
}

/**
 * A body refused for its size (413 REQUEST_ENTITY_TOO_LARGE, see MAX_REQUEST_BYTES) was not read
 * to its end: the rest is still on the connection, so the connection is closed, not reused.
 */
export function useCloseAfterTooLarge(): Plugin {
  return {
    onResponse({ response }) {
      if (response.status === 413) response.headers.set('connection', 'close');
    },
  };
}
