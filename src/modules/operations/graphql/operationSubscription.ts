import { FleetOperations, type Operation } from '../fleet-operations.js';
import { builder } from '../../../graphql/builder.js';
import { localIdOf } from '../../../graphql/ids.js';
import { watchRow } from '../../../graphql/row-watch.js';
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
      return watchRow({
        load,
        notFound: `no operation ${args.id}`,
        wakeUps: operations.progress(id!),
        changed: (current, next) => next.done !== current.done || next.status !== current.status,
        finished: (o) => !['PENDING', 'RUNNING'].includes(o.status),
      });
    },
    resolve: (operation: Operation) => operation,
  }),
);
