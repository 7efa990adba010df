import { GraphQLError } from 'graphql';
import { Repeater } from 'graphql-yoga';
import { FleetOperations, type Operation } from '../fleet-operations.js';
import { builder } from '../../../graphql/builder.js';
import { localIdOf } from '../../../graphql/ids.js';
import { OperationRef } from './Operation.js';

builder.subscriptionField('operation', (t) =>
  t.field({
    type: OperationRef,
    description: 'An operation\'s progress: its state at once, then after every tenant; ends when it finishes.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true, description: 'The Operation\'s global id, as a fleet mutation returned it.' }) },
    subscribe: async (_, args, ctx) => {
      const id = localIdOf(String(args.id), 'Operation');
      const operations = ctx.services.get(FleetOperations);
      const load = async () => (id ? ((await operations.byIds([id]))[0] ?? null) : null);
      if (!(await load())) throw new GraphQLError(`no operation ${args.id}`, { extensions: { code: 'NOT_FOUND' } });
      return new Repeater<Operation>(async (push, stop) => {
        const events = operations.progress(id!)[Symbol.asyncIterator]();
        let stopped = false;
        void stop.then(() => {
          stopped = true;
          void events.return?.();
        });
        const finished = (o: Operation) => !['PENDING', 'RUNNING'].includes(o.status);
        let current = (await load())!;
        await push(current);
        let pending = events.next();
        while (!stopped && !finished(current)) {
          // Progress events wake it at once; the re-read every second covers any event missed
          // while the subscription was starting.
          const event = await Promise.race([pending, new Promise<null>((r) => setTimeout(() => r(null), 1000).unref())]);
          if (stopped) break;
          // An event: wait for the next one. The bus closed: keep re-reading every second.
          if (event) pending = event.done ? new Promise<never>(() => {}) : events.next();
          const next = (await load())!;
          if (next.done !== current.done || next.status !== current.status) await push(next);
          current = next;
        }
        stop();
      });
    },
    resolve: (operation: Operation) => operation,
  }),
);
