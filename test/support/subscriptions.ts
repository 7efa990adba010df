import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface Collected<T> {
  values: T[];
  errors: unknown[];
  done: boolean;
  /** SSE: the server sent its `complete` event (the stream ended cleanly, not cut). */
  completed?: boolean;
  stop(): void;
}

/** A graphql-ws client on the service's /graphql, sending the key in connection_init. */
export function wsClient(httpUrl: string, key: string | null, onClosed?: (code: number) => void): Client {
  return createClient({
    url: `${httpUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: key ? { authorization: `Bearer ${key}` } : {},
    retryAttempts: 0,
    lazy: true,
    on: { closed: (event) => onClosed?.((event as { code: number }).code) },
  });
}

export function subscribeWs<T>(client: Client, query: string, variables: Record<string, unknown>, pick: (data: any) => T): Collected<T> {
  const collected: Collected<T> = { values: [], errors: [], done: false, stop: () => {} };
  collected.stop = client.subscribe(
    { query, variables },
    {
      next: (r) => {
        if (r.errors) collected.errors.push(...r.errors);
        else collected.values.push(pick(r.data));
      },
      error: (e) => {
        collected.errors.push(e);
        collected.done = true;
      },
      complete: () => {
        collected.done = true;
      },
    },
  );
  return collected;
}

/** A subscription over Server-Sent Events: POST with Accept: text/event-stream, the key as a header. */
export function subscribeSse<T>(httpUrl: string, key: string, query: string, variables: Record<string, unknown>, pick: (data: any) => T): Collected<T> {
  const abort = new AbortController();
  const collected: Collected<T> = { values: [], errors: [], done: false, stop: () => abort.abort() };
  void (async () => {
    try {
      const res = await fetch(`${httpUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${key}` },
        body: JSON.stringify({ query, variables }),
        signal: abort.signal,
      });
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (/^event: complete$/m.test(event)) collected.completed = true;
          const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
          if (!data) continue;
          const message = JSON.parse(data) as { data?: unknown; errors?: unknown[] };
          if (message.errors) collected.errors.push(...message.errors);
          else if (message.data) collected.values.push(pick(message.data));
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) collected.errors.push(err);
    } finally {
      collected.done = true;
    }
  })();
  return collected;
}

export async function until<T>(probe: () => T | Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} (last: ${JSON.stringify(v)?.slice(0, 3000)})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
