// Health: readiness (computed in the background, served from memory to probes and the health
// query) and the inventory that compares every tenant database with its records (drift).
export { ReadinessMonitor, type ReadinessCheck, type ReadinessReport, type TenantHealth } from './readiness.js';
export { TenantInventory, type InventoryFinding, type InventoryProgress, type InventoryRecord } from './tenant-inventory.js';
export { TenantRefresh, type TenantRefreshResult } from './refresh-tenant.js';
