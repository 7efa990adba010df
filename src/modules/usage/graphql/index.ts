// The usage module's GraphQL: ConnectionUsage and ClusterUsage, Tenant.usage / connections / usageHistory,
// and the connectionUsage, connectionUsageBatch and clusterUsage subscriptions.
import './ConnectionUsage.js';
import './ClusterUsage.js';
import './connectionUsageSubscription.js';
import './connectionUsageBatchSubscription.js';
import './clusterUsageSubscription.js';
