// The health module's GraphQL: the health query (readiness with every check and tenant problem),
// Tenant.inventory, and the refreshTenant mutation.
import './Health.js';
import './refreshTenant.js';
