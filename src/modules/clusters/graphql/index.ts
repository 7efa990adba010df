// The clusters module's GraphQL: the Cluster node, the clusters query, and registerCluster, updateCluster, cordonCluster, removeCluster.
import './Cluster.js';
import './clusterMutations.js';

export { ADMIN_FIGURE, ClusterRef, ClusterStatusEnum } from './Cluster.js';
