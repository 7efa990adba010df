// The templates module's GraphQL: SchemaTemplate and schemaTemplates, SchemaVersion with
// Tenant.schemaVersion(s), and the upgradeTenantSchema mutation.
import './SchemaTemplate.js';
import './SchemaVersion.js';
import './upgradeTenantSchema.js';
