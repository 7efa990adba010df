// Connection quotas: what each tenant may hold and its history, the cluster's capacity they share,
// which cluster a new tenant is placed on (ClusterPlacement),
// applying them to PostgreSQL (role and database CONNECTION LIMIT) and repairing drift there.
export { CapacityPlanner } from './cluster-capacity.js';
export { ClusterPlacement, type PlacementCandidate, type PlacementPolicy, type PlacementRecord, type PlacementRequest } from './cluster-placement.js';
export { ConnectionLimits } from './connection-limits.js';
export { LimitDrift, type ClusterStateRepair } from './limit-drift.js';
export { QuotaStore } from './quota-store.js';
export { QuotaUpdates } from './update-tenant-quota.js';
