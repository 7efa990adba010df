import { isAsyncIterable, type Plugin } from 'graphql-yoga';

/**
 * Ends an SSE subscription as soon as its client has left (the request's signal aborts when
 * its connection closes). Without it, a client that left before the server started sending
 * kept its subscription for good: the server adapter skips a response whose connection is
 * closed without cancelling its body, and cancelling it would not reach the subscription
 * anyway (yoga's stream only takes its iterator once read). What stayed was the
 * subscriber's queue, its live session and the sampler's demand. graphql-ws ends its own
 * operations when its socket closes (no request there).
 *
 * Registered after LiveSessions' plugin, so the result it ends is the live subscription.
 */
export function useEndAbandonedSubscriptions(): Plugin {
  return {
    onSubscribe: ({ args }) => {
      const signal = (args.contextValue as { request?: Request }).request?.signal;
      if (!signal) return;
      return {
        onSubscribeResult: ({ result }) => {
          if (!isAsyncIterable(result)) return;
          const end = () => void result[Symbol.asyncIterator]().return?.()?.catch(() => undefined);
          if (signal.aborted) end();
          else signal.addEventListener('abort', end, { once: true });
        },
      };
    },
  };
}
