import { Repeater } from 'graphql-yoga';

/** graphql-yoga's `map` for a mapper that gives any number of values per item, handed to the reader one at a time. */
export function flatMap<T, U>(mapper: (item: T) => readonly U[]): (source: AsyncIterable<T>) => Repeater<U> {
  return (source) =>
    new Repeater<U>(async (push, stop) => {
      const iterator = source[Symbol.asyncIterator]();
      void stop.then(() => iterator.return?.());
      for (let r = await iterator.next(); !r.done; r = await iterator.next()) for (const value of mapper(r.value)) await push(value);
      stop();
    });
}
