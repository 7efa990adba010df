import { TenantMoves, type TenantMove } from '../tenant-moves.js';
import { builder } from '../../../graphql/builder.js';
import { localIdOf } from '../../../graphql/ids.js';
import { watchRow } from '../../../graphql/row-watch.js';
import { canSeeTenant } from '../../../platform/viewer.js';
import { TenantMoveRef } from './TenantMove.js';

builder.subscriptionField('tenantMove', (t) =>
  t.field({
    type: TenantMoveRef,
    description:
      'A move as it goes: its state at once, then at each step, every few seconds of figures while it copies and ' +
      'catches up, and at its end; the stream ends when the move does (SUCCEEDED, FAILED or ROLLED_BACK). ' +
      'Admins follow any move, a tenant\'s key its own tenant\'s (another tenant\'s move is NOT_FOUND, as an unknown one is).',
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true, description: 'The TenantMove\'s global id, as moveTenant returned it.' }) },
    subscribe: async (_, args, ctx) => {
      const id = localIdOf(String(args.id), 'TenantMove');
      const moves = ctx.services.get(TenantMoves);
      const viewer = ctx.viewer!;
      const load = async () => {
        const move = id ? ((await moves.byIds([id]))[0] ?? null) : null;
        return move && canSeeTenant(viewer, move.tenantId) ? move : null;
      };
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
