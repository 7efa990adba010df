// The quotas module's GraphQL: Quota and its history, Tenant.quota, the quota figures of Cluster
// (allocatedConnections, tenantCount, capacity) and the updateTenantQuota mutation.
import './Quota.js';
import './updateTenantQuota.js';

export { UpdateTenantQuotaPayloadRef } from './updateTenantQuota.js';
