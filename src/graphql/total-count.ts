import type { ObjectRef } from '@pothos/core';
import { builder } from './builder.js';

// A page's COUNT runs only when totalCount is selected: the resolver hands the count over as a
// thunk, kept beside the connection object it returned (which Pothos passes on to totalCount).
type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

const counters = new WeakMap<object, () => Promise<number>>();

/** The connection, with how to count every row its filter and the caller's access match (run only if asked). */
export function withTotalCount<C extends object>(connection: C, count: () => Promise<number>): C {
  counters.set(connection, count);
  return connection;
}

/**
 * A Relay connection type named for what it holds (`<name>Connection`, `<name>Edge`), with
 * totalCount. Its resolvers must return withTotalCount(connection, count).
 */
export function countedConnection<T extends object>(type: ObjectRef<Types, T>, name: string, holds: string) {
  return builder.connectionObject(
    {
      type,
      name: `${name}Connection`,
      description: `A page of ${holds}, with cursors to page on and the total.`,
      fields: (t) => ({
        totalCount: t.int({
          description:
            `How many ${holds} the filter and the caller's access match, across all pages (one COUNT query, run only when selected; ` +
            'it costs 2 per row of the page in GRAPHQL_MAX_COST, like a column).',
          complexity: 2,
          resolve: (connection) => {
            const count = counters.get(connection);
            if (!count) throw new Error(`${name}Connection resolved without withTotalCount`);
            return count();
          },
        }),
      }),
    },
    { name: `${name}Edge`, description: `One of the ${holds} in a page, with its cursor.` },
  );
}
