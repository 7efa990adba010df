// The managed PostgreSQL servers: their records in the control database and, per cluster,
// the admin connection pool every other module reaches a cluster through.
export { ClusterRegistry } from './cluster-registry.js';
export { ClusterStore } from './cluster-store.js';
export type { ServerFacts } from '../../platform/db/cluster-admin.js';
