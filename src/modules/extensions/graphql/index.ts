// The extensions module's GraphQL: InstalledExtension and AvailableExtension, Tenant.extensions,
// Cluster.extensions and the updateTenantExtensions mutation.
import './Extension.js';
import './updateTenantExtensions.js';
