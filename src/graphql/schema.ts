// The schema index only imports: each file adds its types and the fields that return them.
import { builder } from './builder.js';
import './nodes/Cluster.js';
import './nodes/Quota.js';
import './nodes/SchemaVersion.js';
import './nodes/Tenant.js';
import './nodes/AuditEvent.js';
import './nodes/ApiKey.js';
import './nodes/Viewer.js';
import './nodes/SchemaTemplate.js';
import './nodes/Pool.js';
import './nodes/ConnectionUsage.js';
import './nodes/ClusterUsage.js';
import './nodes/Extension.js';
import './mutations/provisionTenant.js';
import './mutations/deprovisionTenant.js';
import './mutations/createApiKey.js';
import './mutations/revokeApiKey.js';
import './mutations/updateTenantQuota.js';
import './mutations/terminateConnection.js';
import './mutations/reconcilePools.js';
import './mutations/upgradeTenantSchema.js';
import './mutations/updateTenantExtensions.js';
import './subscriptions/connectionUsage.js';
import './subscriptions/clusterUsage.js';

export const schema = builder.toSchema({ sortSchema: true });
