// Moving a tenant between clusters: ONLINE by logical replication, OFFLINE by dump and restore,
// with persisted steps, a short cutover under the tenant's lock, recovery and retention.
export { TenantMoves, ONLINE_STEPS, OFFLINE_STEPS, type MovePooler, type MoveMode, type MoveProgress, type MoveStep, type MoveTenantInput, type TenantMove } from './tenant-moves.js';
export { dumpToolsFor, findDumpTools, type DumpTools } from './dump-tools.js';
export { moveLeftovers, moveObjectName, tableSyncSlotPattern } from './moves.sql.js';
export { ClusterEvacuation } from './cluster-evacuation.js';
