import { createClient, type Client } from 'graphql-ws';

/** Marks a GraphQL document for check-queries.mjs, which validates it against schema.graphql at build time. */
export const gql = (strings: TemplateStringsArray): string => strings[0]!;

export interface UserError { code: string; field: string | null; message: string }

export class GraphQLRequestError extends Error {
  constructor(message: string, readonly code: string | undefined) {
    super(message);
  }
}

const KEY_STORAGE = 'tenantry.apiKey';
export const storedKey = (): string | null => sessionStorage.getItem(KEY_STORAGE);
export const storeKey = (key: string | null): void => {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
};

const CLOSE_FORBIDDEN = 4403;
/** Close codes after which a reconnect can succeed: going away (server stopping), try again later (slow/outage). */
const RETRYABLE = new Set([1001, 1006, 1013]);

/** The endpoint's URL: same origin as the page (the CSP allows no other). */
const httpUrl = () => new URL('/graphql', location.href).href;
const wsUrl = () => httpUrl().replace(/^http/, 'ws');

/**
 * One API key's access: queries over HTTP (bearer header), subscriptions over one graphql-ws socket
 * (key in connection_init). A 4403 close or an UNAUTHENTICATED answer calls onRejected with the reason.
 */
export class Api {
  readonly ws: Client;
  constructor(readonly key: string, private readonly onRejected: (reason: string) => void) {
    this.ws = createClient({
      url: wsUrl(),
      connectionParams: { authorization: `Bearer ${key}` },
      lazy: true,
      keepAlive: 10_000,
      retryAttempts: 20,
      shouldRetry: (event) => !(event instanceof CloseEvent) || RETRYABLE.has(event.code),
      // Exponential backoff with jitter, capped at 10 s.
      retryWait: (retries) => new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** retries) * (0.5 + Math.random() / 2))),
      on: {
        closed: (event) => {
          const close = event as CloseEvent;
          if (close.code === CLOSE_FORBIDDEN) this.onRejected(close.reason || 'The key was refused.');
        },
      },
    });
  }

  async request<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const res = await fetch(httpUrl(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${this.key}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
    const error = body.errors?.[0];
    if (error) {
      const code = error.extensions?.code;
      if (code === 'UNAUTHENTICATED' || code === 'KEY_REVOKED' || code === 'KEY_EXPIRED') this.onRejected(error.message);
      throw new GraphQLRequestError(error.message, code);
    }
    return body.data as T;
  }

  /** Streams a subscription; returns the function that stops it. */
  subscribe<T = any>(query: string, variables: Record<string, unknown>, next: (data: T) => void, error?: (message: string) => void): () => void {
    return this.ws.subscribe<T>(
      { query, variables },
      {
        next: (result) => {
          if (result.errors?.length) error?.(result.errors.map((e) => e.message).join('; '));
          if (result.data) next(result.data as T);
        },
        error: (err) => {
          const message = Array.isArray(err) ? err.map((e) => e.message).join('; ') : err instanceof CloseEvent ? err.reason : String(err);
          error?.(message);
        },
        complete: () => {},
      },
    );
  }

  dispose(): void {
    void this.ws.dispose();
  }
}
