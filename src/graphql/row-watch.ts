import { GraphQLError } from 'graphql';
import { Repeater } from 'graphql-yoga';

/**
 * A subscription that follows one control-database row of long work (a fleet operation, a
 * move): NOT_FOUND at once when it is not there, else its state at once (the row read for
 * that check), then again whenever it changed, until it is finished. Wake-ups
 * (from the event bus, any replica) make it re-read at once; a re-read every `pollMs` covers a
 * wake-up missed while it was starting, or a bus that is down. Nothing is buffered: a reader
 * that falls behind gets the row as it is when it reads.
 */
export async function watchRow<T>(options: {
  load: () => Promise<T | null>;
  /** The error a row that is not there (or not the caller's) gets at once, as NOT_FOUND. */
  notFound: string;
  wakeUps: AsyncIterable<unknown>;
  /** Whether `next` is worth sending after `current`. */
  changed: (current: T, next: T) => boolean;
  finished: (row: T) => boolean;
  pollMs?: number;
}): Promise<Repeater<T>> {
  const { load, changed, finished, pollMs = 1000 } = options;
  const first = await load();
  if (first === null) throw new GraphQLError(options.notFound, { extensions: { code: 'NOT_FOUND' } });
  return new Repeater<T>(async (push, stop) => {
    const events = options.wakeUps[Symbol.asyncIterator]();
    let stopped = false;
    void stop.then(() => {
      stopped = true;
      void events.return?.();
    });
    let current = first;
    await push(current);
    let pending = events.next();
    while (!stopped && !finished(current)) {
      const event = await Promise.race([pending, new Promise<null>((r) => setTimeout(() => r(null), pollMs).unref())]);
      if (stopped) break;
      // A wake-up: wait for the next one. The bus closed: keep re-reading every pollMs.
      if (event) pending = event.done ? new Promise<never>(() => {}) : events.next();
      const next = await load();
      if (next === null) break; // gone (deleted with its tenant): the stream ends
      if (changed(current, next)) await push(next);
      current = next;
    }
    stop();
  });
}
