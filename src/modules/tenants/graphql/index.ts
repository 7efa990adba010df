// The tenants module's GraphQL: the Tenant node and its lists, the lifecycle mutations, and the
// tenant of lower modules' objects (AuditEvent, ApiKey, Viewer) with Tenant.auditEvents.
import './Tenant.js';
import './TenantEndpoints.js';
import './tenantFieldsOnOthers.js';
import './tenantLifecycle.js';
import './deprovisionTenant.js';
import './terminateConnection.js';

export { ProvisioningStateRef, TenantConnectionRef, TenantRef } from './Tenant.js';
