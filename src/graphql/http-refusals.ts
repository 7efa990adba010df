import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createGraphQLError, isAsyncIterable, processRegularResult, type Plugin } from 'graphql-yoga';

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

/**
 * MAX_REQUEST_BYTES, as yoga's own `maxRequestBodySize` applies it (same checks, errors and
 * statuses: 400 BAD_REQUEST for a Content-Length that is not one number, 413
 * REQUEST_ENTITY_TOO_LARGE over the limit), but without copying every body through a
 * TransformStream: a body announced by a valid Content-Length is no longer than that (Node's
 * parser reads exactly that many bytes), so only bodies without one are counted as they are
 * read. yoga's option is turned off where this is used (yoga.ts); it must be the last plugin,
 * where yoga puts its own, so that it wraps whichever request parser was chosen.
 */
export function useRequestBodyLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const contentLength = request.headers.get('content-length');
      if (contentLength != null) {
        if (!CONTENT_LENGTH.test(contentLength)) {
          throw createGraphQLError('Content-Length header is invalid.', { extensions: { http: { status: 400 }, code: 'BAD_REQUEST' } });
        }
        if (Number(contentLength) > limit) throw bodyTooLarge();
        return;
      }
      if (requestParser == null || request.body == null) return;
      const parse = requestParser;
      setRequestParser((req) => parse(countedBody(req, limit, fetchAPI)));
    },
  };
}

/** Only a single non-negative integer is a valid Content-Length (as yoga checks it). */
const CONTENT_LENGTH = /^\d+$/;

function bodyTooLarge() {
  return createGraphQLError('Request body too large', { extensions: { http: { status: 413 }, code: 'REQUEST_ENTITY_TOO_LARGE' } });
}

/** The request with its body counted as it is read: an error once it passes `limit` (yoga's limitRequestBodySize). */
function countedBody(request: Request, limit: number, fetchAPI: { Request: typeof Request; TransformStream: typeof TransformStream }): Request {
  const body = request.body!;
  // The native TransformStream for a native body (see graphql-yoga's use-limit-request-body-size.ts, issue 4583).
  const Transform = body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
  let bytesRead = 0;
  const counted = body.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytesRead += chunk.byteLength;
        if (bytesRead > limit) return controller.error(bodyTooLarge());
        controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, { method: request.method, headers: request.headers, signal: request.signal, body: counted, duplex: 'half' } as RequestInit);
}
