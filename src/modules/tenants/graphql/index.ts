// The tenants module's GraphQL: the Tenant node and its lists, the lifecycle mutations, and the
// tenant of lower modules' objects (AuditEvent, ApiKey, Viewer) with Tenant.auditEvents.
import './Tenant.js';
import './tenantFieldsOnOthers.js';
import './tenantLifecycle.js';
import './deprovisionTenant.js';
import './terminateConnection.js';

export { TenantRef } from './Tenant.js';
