// The usage module's GraphQL: ConnectionUsage and ClusterUsage, Tenant.usage / connections / usageHistory,
// the connectionUsage, connectionUsageBatch and clusterUsage subscriptions, and Query.fleetUsageHistory.
import './ConnectionUsage.js';
import './ClusterUsage.js';
import './connectionUsageSubscription.js';
import './connectionUsageBatchSubscription.js';
import './clusterUsageSubscription.js';
import './fleetUsageHistory.js';
