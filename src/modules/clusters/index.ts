// The managed PostgreSQL servers: their records in the control database and, per cluster,
// the admin connection pool every other module reaches a cluster through.
export { ClusterRegistry, ClusterUrlError, holdsControlDatabase } from './cluster-registry.js';
export { ClusterSecrets, ClusterSecretError } from './cluster-secrets.js';
export { ClusterStore } from './cluster-store.js';
export {
  ClusterAdministration,
  connectionUrlSource,
  moveReadiness,
  SUPPORTED_VERSIONS,
  type ClusterChangeResult,
  type ClusterPreparer,
  type ConnectionUrlSource,
  type MoveReadiness,
} from './cluster-administration.js';
export type { ServerFacts } from '../../platform/db/cluster-admin.js';
