import { TenantMoves, type TenantMove } from '../tenant-moves.js';
import { builder } from '../../../graphql/builder.js';
import { localIdOf } from '../../../graphql/ids.js';
import { watchRow } from '../../../graphql/row-watch.js';
import { TenantMoveRef } from './TenantMove.js';

builder.subscriptionField('tenantMove', (t) =>
  t.field({
    type: TenantMoveRef,
    description:
      'A move as it goes (admins only): its state at once, then at each step, every few seconds of figures while it copies and ' +
      'catches up, and at its end; the stream ends when the move does (SUCCEEDED, FAILED or ROLLED_BACK).',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true, description: 'The TenantMove\'s global id, as moveTenant returned it.' }) },
    subscribe: async (_, args, ctx) => {
      const id = localIdOf(String(args.id), 'TenantMove');
      const moves = ctx.services.get(TenantMoves);
      const load = async () => (id ? ((await moves.byIds([id]))[0] ?? null) : null);
      return watchRow({
        load,
        notFound: `no move ${args.id}`,
        wakeUps: moves.progress(id!),
        changed: (current, next) => next.updatedAt.getTime() !== current.updatedAt.getTime() || next.step !== current.step || next.status !== current.status,
        finished: (m) => m.status !== 'RUNNING',
      });
    },
    resolve: (move: TenantMove) => move,
  }),
);
