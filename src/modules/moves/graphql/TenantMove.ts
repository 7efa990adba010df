import { TenantMoves, type MoveProgress, type TenantMove } from '../tenant-moves.js';
import { builder } from '../../../graphql/builder.js';
import { describedValues } from '../../../graphql/enum-values.js';
import { isUuid } from '../../../graphql/ids.js';
import { canSeeTenant } from '../../../platform/viewer.js';
import { ClusterRef } from '../../clusters/graphql/index.js';
import { ClusterStore } from '../../clusters/index.js';
import { TenantStore } from '../../tenants/index.js';
import { TenantRef } from '../../tenants/graphql/index.js';

export const TenantMoveModeEnum = builder.enumType('TenantMoveMode', {
  description: 'How a tenant moves between clusters.',
  values: describedValues<TenantMove['mode']>({
    ONLINE: 'By logical replication: copied while the tenant keeps working, then a cutover of a few seconds (its pool paused, direct logins refused).',
    OFFLINE: 'By pg_dump | pg_restore while the tenant cannot connect (its pool paused for the whole copy).',
  }),
});

export const TenantMoveStatusEnum = builder.enumType('TenantMoveStatus', {
  description: 'Where a move stands.',
  values: describedValues<TenantMove['status']>({
    RUNNING: 'Under way (also after a restart: recovery rolls it back before its commit point, or finishes it after).',
    SUCCEEDED: 'The tenant lives on the target; the source database is retained under retainedDatabase until retainedUntil.',
    FAILED: 'A step failed: everything made on the target was dropped and the tenant serves from its source as before (see error).',
    ROLLED_BACK: 'Undone before its commit point (cutover timeout, or the server running it stopped): the tenant serves from its source as before.',
  }),
});

const progressOf = (m: TenantMove) => m.progress as MoveProgress;

const RowCountRef = builder.objectRef<{ table: string; rows: number }>('TenantMoveRowCount').implement({
  description: 'The rows of one table, counted on both clusters at the cutover (equal, or the move stops).',
  fields: (t) => ({
    table: t.exposeString('table', { description: 'schema.table' }),
    rows: t.float({ description: 'Rows counted (a Float: counts may exceed 2^31).', resolve: (r) => r.rows }),
  }),
});

export const TenantMoveRef = builder.objectRef<TenantMove>('TenantMove');

builder.node(TenantMoveRef, {
  description:
    'A tenant\'s move to another cluster: persisted steps, progress and figures, resumed or rolled back after a restart. ' +
    'Admins see every move; a tenant\'s key sees its own tenant\'s (its clusters as Cluster shows them to it: name and version).',
  id: { resolve: (m) => m.id },
  loadMany: async (ids, ctx) => {
    const viewer = ctx.viewer;
    if (!viewer) return ids.map(() => null);
    const rows = await ctx.services.get(TenantMoves).byIds(ids.filter(isUuid));
    // Another tenant's move is null, as an unknown id is.
    return ids.map((id) => rows.find((r) => r?.id === id && canSeeTenant(viewer, r.tenantId)) ?? null);
  },
  fields: (t) => ({
    tenant: t.loadable({
      type: TenantRef,
      nullable: true,
      description: 'The tenant moved; null if its record is gone.',
      load: (ids: string[], ctx) => ctx.services.get(TenantStore).byIds(ids),
      resolve: (m) => m.tenantId,
    }),
    sourceCluster: t.loadable({
      type: ClusterRef,
      nullable: true,
      description: 'Where the tenant was.',
      load: (ids: string[], ctx) => ctx.services.get(ClusterStore).byIds(ids),
      resolve: (m) => m.sourceClusterId,
    }),
    targetCluster: t.loadable({
      type: ClusterRef,
      nullable: true,
      description: 'Where the tenant goes.',
      load: (ids: string[], ctx) => ctx.services.get(ClusterStore).byIds(ids),
      resolve: (m) => m.targetClusterId,
    }),
    mode: t.field({ type: TenantMoveModeEnum, description: 'ONLINE or OFFLINE.', resolve: (m) => m.mode }),
    status: t.field({ type: TenantMoveStatusEnum, description: 'Where it stands.', resolve: (m) => m.status }),
    step: t.exposeString('step', {
      nullable: true,
      description: 'The last step completed: PREFLIGHT, TARGET_ROLE, TARGET_DATABASE, SCHEMA, PUBLICATION, SUBSCRIPTION, INITIAL_COPY, INDEXES, CATCH_UP (ONLINE), COMMITTED, CLEANUP.',
    }),
    warnings: t.stringList({ description: 'What the move does not carry (unlogged tables, large objects) or rebuilds (materialized views).', resolve: (m) => progressOf(m).warnings ?? [] }),
    replicaIdentityFull: t.stringList({ description: 'Tables the preflight set to REPLICA IDENTITY FULL (setReplicaIdentityFull).', resolve: (m) => progressOf(m).replicaIdentityFull ?? [] }),
    tablesTotal: t.int({ nullable: true, description: 'ONLINE: tables the subscription copies; null before SUBSCRIPTION.', resolve: (m) => progressOf(m).tablesTotal ?? null }),
    tablesCopied: t.int({ nullable: true, description: 'ONLINE: tables copied and following changes.', resolve: (m) => progressOf(m).tablesCopied ?? null }),
    sourceBytes: t.float({ nullable: true, description: 'The tenant\'s tables on the source at the start (bytes, with indexes).', resolve: (m) => progressOf(m).sourceBytes ?? null }),
    bytesCopied: t.float({ nullable: true, description: 'ONLINE: the target database\'s size during the copy (bytes).', resolve: (m) => progressOf(m).bytesCopied ?? null }),
    lagBytes: t.float({ nullable: true, description: 'ONLINE: how far the subscription trailed the source at the last look (bytes of WAL).', resolve: (m) => progressOf(m).lagBytes ?? null }),
    pauseMs: t.int({ nullable: true, description: 'How long the tenant\'s pool was paused (and its logins refused) at the cutover, in milliseconds; null before.', resolve: (m) => progressOf(m).pauseMs ?? null }),
    sequencesCopied: t.int({ nullable: true, description: 'ONLINE: sequences whose value was copied at the cutover.', resolve: (m) => progressOf(m).sequencesCopied ?? null }),
    rowCounts: t.field({
      type: [RowCountRef],
      description: 'Rows per table counted on both clusters at the cutover (empty before).',
      resolve: (m) => Object.entries(progressOf(m).rowCounts ?? {}).map(([table, rows]) => ({ table, rows })),
    }),
    error: t.exposeString('error', {
      nullable: true,
      description: 'Why it FAILED or was ROLLED_BACK. While RUNNING: why it is being undone, when its rollback could not finish yet (a server was down; each recovery pass tries again). Null otherwise.',
    }),
    requestedBy: t.exposeString('requestedBy', { description: 'Who asked for it.' }),
    retainedDatabase: t.exposeString('retainedDatabase', { nullable: true, description: 'The source database\'s name after the move (kept, closed to connections, until retainedUntil).' }),
    retainedUntil: t.expose('retainedUntil', { type: 'DateTime', nullable: true, description: 'When the retained source database and roles are dropped; null once dropped or when none is kept.' }),
    cutoverTimeoutSeconds: t.int({ description: 'The cutover\'s time limit asked for.', resolve: (m) => (m.options as { cutoverTimeoutSeconds: number }).cutoverTimeoutSeconds }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was started.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When its step or figures last changed.' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true, description: 'When it ended; null while RUNNING.' }),
  }),
});

builder.objectField(TenantRef, 'moves', (t) =>
  t.field({
    type: [TenantMoveRef],
    description: 'Its moves between clusters, newest first (to its own key as well: a move pauses its pool at the cutover).',
    resolve: (tenant, _args, ctx) => ctx.loader<string, TenantMove[]>('tenant-moves', {}, (ids) => ctx.services.get(TenantMoves).ofTenants(ids)).load(tenant.id),
  }),
);
