// The clusters module's GraphQL: the Cluster node and the clusters query.
import './Cluster.js';

export { ADMIN_FIGURE, ClusterRef } from './Cluster.js';
