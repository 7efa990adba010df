import type { Plugin } from 'graphql-yoga';

/**
 * What the HTTP side of /graphql refuses, each with a code and a sentence a client can act on
 * (yoga answers some of these with an empty body or no code).
 */

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
