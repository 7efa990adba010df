// The quotas module's GraphQL: Quota and its history, Tenant.quota, the quota figures of Cluster
// (allocatedConnections, tenantCount, capacity), the updateTenantQuota mutation, and placement:
// PlacementInput (provisionTenant's, drainCluster's) and Tenant.placement.
import './Quota.js';
import './Placement.js';
import './updateTenantQuota.js';

export { UpdateTenantQuotaPayloadRef } from './updateTenantQuota.js';
export { PlacementInput, placementRequestOf } from './Placement.js';
