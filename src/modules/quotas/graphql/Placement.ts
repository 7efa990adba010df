import { encodeGlobalID } from '@pothos/plugin-relay';
import type { PlacementRecord, PlacementRequest } from '../cluster-placement.js';
import { builder } from '../../../graphql/builder.js';
import { describedValues } from '../../../graphql/enum-values.js';
import { localIdOf } from '../../../graphql/ids.js';
import { UserError } from '../../../platform/errors.js';
import { TenantRef } from '../../tenants/graphql/index.js';

export const PlacementInput = builder.inputType('PlacementInput', {
  description: 'Where a new tenant goes: a cluster by id, or a region and/or labels (the clusters that have all of them). Only ACTIVE clusters with room take tenants.',
  fields: (t) => ({
    clusterId: t.id({ required: false, description: 'This cluster (its id), and no other.' }),
    region: t.string({ required: false, description: 'A cluster in this region.' }),
    labels: t.stringList({ required: false, description: 'A cluster that has every one of these labels.' }),
  }),
});

/** The service's PlacementRequest from the GraphQL input: a cluster's global id (or UUID) becomes its local id. */
export function placementRequestOf(input: { clusterId?: string | number | null; region?: string | null; labels?: readonly string[] | null } | null | undefined): PlacementRequest | null {
  if (!input) return null;
  let clusterId: string | null = null;
  if (input.clusterId != null) {
    clusterId = localIdOf(String(input.clusterId), 'Cluster');
    if (!clusterId) throw new UserError('NOT_FOUND', `no cluster with id ${String(input.clusterId).slice(0, 100)}`, 'placement.clusterId');
  }
  return { clusterId, region: input.region ?? null, labels: input.labels ?? null };
}

const PlacementPolicyEnum = builder.enumType('PlacementPolicy', {
  description: 'How a cluster is chosen among those that match and have room (PLACEMENT_POLICY).',
  values: describedValues<'SPREAD' | 'PACK'>({
    SPREAD: 'The cluster with the most room left (ties: fewest tenants, then name).',
    PACK: 'The cluster with the least room that still fits (fills one cluster before the next).',
  }),
});

const TenantPlacementRef = builder.objectRef<PlacementRecord>('TenantPlacement').implement({
  description: 'Where provisioning was asked to place a tenant, and where it placed it (Tenant.cluster says where it lives now, after any move).',
  fields: (t) => ({
    askedClusterId: t.id({ nullable: true, description: 'The cluster asked for by id; null when none was.', resolve: (p) => (p.asked?.clusterId ? encodeGlobalID('Cluster', p.asked.clusterId) : null) }),
    askedRegion: t.string({ nullable: true, description: 'The region asked for; null when none was.', resolve: (p) => p.asked?.region ?? null }),
    askedLabels: t.stringList({ description: 'The labels asked for (sorted); empty when none were.', resolve: (p) => p.asked?.labels ?? [] }),
    policy: t.field({ type: PlacementPolicyEnum, description: 'PLACEMENT_POLICY when it was placed.', resolve: (p) => (p.policy === 'pack' ? 'PACK' : 'SPREAD') }),
    placedOnClusterId: t.id({ description: 'The cluster it was placed on at provisioning (its id).', resolve: (p) => encodeGlobalID('Cluster', p.clusterId) }),
  }),
});

builder.objectField(TenantRef, 'placement', (t) =>
  t.field({
    type: TenantPlacementRef,
    nullable: true,
    description: 'Where provisioning was asked to place it and chose to; null for a tenant provisioned before placement was recorded.',
    resolve: (tenant) => (tenant.placement && typeof tenant.placement === 'object' && 'clusterId' in tenant.placement ? (tenant.placement as unknown as PlacementRecord) : null),
  }),
);
