// Provisioning: creating a tenant's role and database from its template step by step, and
// recovery, which completes or undoes what a stopped server left half-done.
export { TenantProvisioning } from './provision-tenant.js';
export { TenantRecovery } from './tenant-recovery.js';
