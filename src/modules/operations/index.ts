// Fleet operations: schema upgrades, extension updates and securing run over every tenant as
// persisted, resumable operations, canaries first, with bounded concurrency and per-tenant results.
export { FleetOperations } from './fleet-operations.js';
