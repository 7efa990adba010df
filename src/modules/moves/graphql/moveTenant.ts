import { TenantMoves, type TenantMove } from '../tenant-moves.js';
import { builder } from '../../../graphql/builder.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';
import { localIdOf } from '../../../graphql/ids.js';
import { TenantMoveModeEnum, TenantMoveRef } from './TenantMove.js';

const MoveTenantInput = builder.inputType('MoveTenantInput', {
  description: 'The tenant, where it goes, and how.',
  fields: (t) => ({
    slug: t.string({ required: true, description: 'The tenant.' }),
    targetClusterId: t.id({ required: true, description: 'The cluster it moves to: its id (the Cluster node\'s global id, or its UUID).' }),
    mode: t.field({ type: TenantMoveModeEnum, required: true, description: 'ONLINE (logical replication, seconds of pause) or OFFLINE (dump and restore, paused throughout).' }),
    cutoverTimeoutSeconds: t.int({
      required: false,
      defaultValue: 30,
      description: 'ONLINE: past this, before its commit point, the cutover is undone and the tenant serves from its source again (1 to 600).',
    }),
    setReplicaIdentityFull: t.boolean({
      required: false,
      defaultValue: false,
      description: 'ONLINE: give tables without a primary key or replica identity REPLICA IDENTITY FULL (audited) instead of refusing the move.',
    }),
    retainSourceHours: t.int({ required: false, defaultValue: 24, description: 'How long the source database is kept, renamed and closed, after the move (0 to 720).' }),
  }),
});

const MoveTenantPayloadRef = builder.objectRef<Payload<{ move: TenantMove; warnings: string[] }>>('MoveTenantPayload').implement({
  description: 'The result of moveTenant.',
  fields: (t) => ({
    move: t.field({ type: TenantMoveRef, nullable: true, description: 'The move, started (it runs in the background; follow it with node(id) or Tenant.moves); null when refused.', resolve: (p) => p.move ?? null }),
    warnings: t.stringList({ description: 'What the move does not carry or rebuilds (also on the move).', resolve: (p) => p.warnings ?? [] }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('moveTenant', (t) =>
  t.field({
    type: MoveTenantPayloadRef,
    description:
      'Admins only. Moves a tenant to another cluster: preflight (every problem listed, nothing created), then in the background its roles with the same ' +
      'password, its database and schema, the data (ONLINE: logical replication; OFFLINE: dump and restore), a cutover under its lock, and cleanup. ' +
      'Its pooled connection string keeps working; its direct one changes host. See docs/moves.md.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: MoveTenantInput, required: true, description: 'The tenant, the target cluster and the mode.' }) },
    resolve: (_, { input }, ctx) => withUserErrors('moveTenant', input, () => ctx.services.get(TenantMoves).moveTenant(ctx.op, { ...input, targetClusterId: localIdOf(String(input.targetClusterId), 'Cluster') ?? '' }, ctx.canSee)),
  }),
);
