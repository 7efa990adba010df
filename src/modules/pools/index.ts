// The connection pooler: the PgBouncer Tenantry runs and supervises, and PoolSync, which keeps its
// pools equal to the active tenants (one per tenant, sized to its quota) and records how each went.
export { PoolSync, type ClusterPreparer, type PoolClusters } from './pool-sync.js';
export { PauseTimeoutError } from './pgbouncer/pgbouncer-driver.js';
export { startPooler, type Pooler } from './pooler-setup.js';
export type { PoolerDriver } from './pooler-driver.js';
export { pooledBackendKey, type PoolStats, type PoolStatsReading } from './pooler-driver.js';
