import { encodeGlobalID } from '@pothos/plugin-relay';
import { ClusterAdministration, type ClusterChangeResult } from '../cluster-administration.js';
import type { Cluster } from '../cluster-store.js';
import { builder } from '../../../graphql/builder.js';
import { localIdOf } from '../../../graphql/ids.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';
import { UserError } from '../../../platform/errors.js';
import { ClusterRef } from './Cluster.js';

/** The cluster's local id from its global id (or a bare UUID); NOT_FOUND for anything else. */
function clusterIdOf(id: string | number): string {
  const local = localIdOf(String(id), 'Cluster');
  if (!local) throw new UserError('NOT_FOUND', `no cluster with id ${String(id).slice(0, 100)}`, 'id');
  return local;
}

const URL_FIELDS_NOTE = 'Exactly one of connectionUrlEnv and connectionUrl.';

const RegisterClusterInput = builder.inputType('RegisterClusterInput', {
  description: `A PostgreSQL server (15 to 18) for Tenantry to manage, and how to reach it as a superuser or a least-privilege control-plane role. ${URL_FIELDS_NOTE}`,
  fields: (t) => ({
    name: t.string({ required: true, description: 'Unique among clusters: 1 to 63 lowercase letters, digits, ".", "_" or "-".' }),
    connectionUrlEnv: t.string({
      required: false,
      description: 'The name of an environment variable of Tenantry\'s process that holds the admin URL (postgresql://…); only the name is stored. Every replica needs it set.',
    }),
    connectionUrl: t.string({
      required: false,
      description: 'The admin URL itself (postgresql://user:password@host:port/database); stored encrypted with CLUSTER_SECRET_KEY and never returned.',
    }),
    region: t.string({ required: false, description: 'Its region, for placement by region (same form as name).' }),
    labels: t.stringList({ required: false, description: 'Labels for placement by labels (e.g. "ssd", "tier=gold"); at most 32.' }),
    maxTenants: t.int({ required: false, description: 'At most this many tenants on it (DEPROVISIONED ones excepted); null or absent: no cap.' }),
  }),
});

const UpdateClusterInput = builder.inputType('UpdateClusterInput', {
  description: 'What changes; an absent field stays as it is. A new URL must lead to the same server (its system identifier is compared).',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The cluster (its id).' }),
    connectionUrlEnv: t.string({ required: false, description: 'A new environment variable holding its admin URL (replaces the sealed URL, if any).' }),
    connectionUrl: t.string({ required: false, description: 'A new admin URL, stored encrypted (replaces the environment variable, if any).' }),
    region: t.string({ required: false, description: 'A new region; null clears it.' }),
    labels: t.stringList({ required: false, description: 'The new labels (replace the old ones); [] clears them.' }),
    maxTenants: t.int({ required: false, description: 'A new cap on its tenants; null removes the cap.' }),
  }),
});

const CordonClusterInput = builder.inputType('CordonClusterInput', {
  description: 'The cluster, and whether to cordon (true) or uncordon (false) it.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The cluster (its id).' }),
    cordoned: t.boolean({ required: false, defaultValue: true, description: 'true: ACTIVE → CORDONED (no new tenants); false: CORDONED → ACTIVE.' }),
  }),
});

const RemoveClusterInput = builder.inputType('RemoveClusterInput', {
  description: 'The cluster to forget.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The cluster (its id).' }),
  }),
});

const ClusterChangePayloadFields = <T extends Payload<ClusterChangeResult>>(name: string, what: string) =>
  builder.objectRef<T>(name).implement({
    description: `The result of ${what}.`,
    fields: (t) => ({
      cluster: t.field({ type: ClusterRef, nullable: true, description: 'The cluster as stored now; null when the mutation was refused.', resolve: (p) => p.cluster ?? null }),
      warnings: t.stringList({ description: 'What is stored but worth knowing, e.g. that it cannot take ONLINE moves (wal_level, replication slots).', resolve: (p) => p.warnings ?? [] }),
      userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
    }),
  });

const RegisterClusterPayload = ClusterChangePayloadFields('RegisterClusterPayload', 'registerCluster');
const UpdateClusterPayload = ClusterChangePayloadFields('UpdateClusterPayload', 'updateCluster');

const CordonClusterPayload = builder.objectRef<Payload<{ cluster: Cluster }>>('CordonClusterPayload').implement({
  description: 'The result of cordonCluster.',
  fields: (t) => ({
    cluster: t.field({ type: ClusterRef, nullable: true, description: 'The cluster with its status now; null when the mutation was refused.', resolve: (p) => p.cluster ?? null }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

const RemoveClusterPayload = builder.objectRef<Payload<{ removedClusterId: string; name: string }>>('RemoveClusterPayload').implement({
  description: 'The result of removeCluster.',
  fields: (t) => ({
    removedClusterId: t.id({ nullable: true, description: 'The (global) id the removed cluster had; null when the mutation was refused.', resolve: (p) => p.removedClusterId ?? null }),
    name: t.string({ nullable: true, description: 'The name the removed cluster had; null when the mutation was refused.', resolve: (p) => p.name ?? null }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationFields((t) => ({
  registerCluster: t.field({
    type: RegisterClusterPayload,
    description:
      'Admins only. Registers a PostgreSQL server: connects (short timeout), checks its version (15 to 18), that it is a primary and the control ' +
      'plane\'s privileges there, prepares it (the pooler\'s lookup function and auth user, template databases), then stores it ACTIVE. ' +
      'Refused with nothing stored when any check fails. The URL is never returned.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RegisterClusterInput, required: true, description: 'Name, how to reach it, region, labels and tenant cap.' }) },
    resolve: (_, { input }, ctx) => withUserErrors('registerCluster', input, () => ctx.services.get(ClusterAdministration).registerCluster(ctx.op, input)),
  }),
  updateCluster: t.field({
    type: UpdateClusterPayload,
    description: 'Admins only. Changes a cluster\'s region, labels, tenant cap or admin URL (checked like registerCluster, and it must reach the same server).',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateClusterInput, required: true, description: 'The cluster and what changes.' }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors('updateCluster', input, () => ctx.services.get(ClusterAdministration).updateCluster(ctx.op, { ...input, id: clusterIdOf(input.id) })),
  }),
  cordonCluster: t.field({
    type: CordonClusterPayload,
    description: 'Admins only. Cordons a cluster (no new tenants are placed on it; its tenants stay) or uncordons it. A DRAINING cluster is refused.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CordonClusterInput, required: true, description: 'The cluster and cordoned true or false.' }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors('cordonCluster', input, async () => ({ cluster: await ctx.services.get(ClusterAdministration).cordonCluster(ctx.op, { ...input, id: clusterIdOf(input.id) }) })),
  }),
  removeCluster: t.field({
    type: RemoveClusterPayload,
    description:
      'Admins only. Forgets a cluster and closes its connections. Refused while a tenant that is not DEPROVISIONED is on it, and for the ' +
      'control database\'s server. The server and its databases are left as they are.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RemoveClusterInput, required: true, description: 'The cluster.' }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors('removeCluster', input, async () => {
        const removed = await ctx.services.get(ClusterAdministration).removeCluster(ctx.op, { id: clusterIdOf(input.id) });
        return { removedClusterId: encodeGlobalID('Cluster', removed.id), name: removed.name };
      }),
  }),
}));
