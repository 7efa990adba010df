// Live connection usage: sampling pg_stat_activity once per cluster (by the lease holder among replicas),
// fanning samples out to subscribers with bounded buffers, each tenant's latest value, and per-minute history.
export { UsageService } from './usage-service.js';
