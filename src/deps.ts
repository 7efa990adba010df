import type { AdvisoryLocks } from './platform/locks/advisory-locks.js';
import type { Config } from './platform/config.js';
import type { ControlClient, ControlQueryCounter } from './platform/db/control-client.js';
import type { Logger } from './platform/logger.js';
import type { ClusterRegistry } from './modules/clusters/cluster-registry.js';
import type { PoolSync } from './modules/pools/pool-sync.js';
import type { UsageService } from './modules/usage/usage-service.js';
import type { EventBus } from './platform/events/event-bus.js';
import type { FleetOperations } from './modules/operations/fleet-operations.js';
import type { TenantInventory } from './modules/health/tenant-inventory.js';
import type { ReadinessMonitor } from './modules/health/readiness.js';
import type { TenantRecovery } from './modules/provisioning/tenant-recovery.js';
import type { TenantryMetrics } from './platform/metrics.js';
import type { TemplateCatalog } from './modules/templates/template-catalog.js';
import type { TemplateDatabases } from './modules/templates/template-databases.js';
import type { ProvisionStep } from './modules/provisioning/provisioning-steps.js';
import type { ApiKeyAuthenticator } from './modules/keys/key-authenticator.js';
import type { LiveReadBudget } from './platform/live-read-budget.js';
import type { OfferedExtensions } from './modules/extensions/offered-extensions.js';

/** Test seams: let a test fail a step on purpose. Never set in production. */
export interface Hooks {
  beforeProvisionStep?: (step: ProvisionStep, tenantSlug: string) => void | Promise<void>;
  afterProvisionStep?: (step: ProvisionStep, tenantSlug: string) => void | Promise<void>;
  /** Named points inside other mutations ("quota.applied", "rotation.stored", ...): where a test may stop the process. */
  checkpoint?: (name: string, tenantSlug: string) => void | Promise<void>;
  beforeOperationItem?: (kind: string, tenantSlug: string) => void | Promise<void>;
  /** Runs before every authentication (a test makes it throw to see what a caller gets). */
  beforeAuthenticate?: () => void | Promise<void>;
  /** Runs inside a live read, while it holds its slot (and, for extensions, its connection to `database`). */
  duringLiveRead?: (what: 'extensions' | 'connections', clusterId: string, database?: string) => void | Promise<void>;
  /** Awaited before Tenantry restarts a PgBouncer that exited (lets a test look at the outage). */
  beforePoolerRestart?: () => void | Promise<void>;
}

/** What the domain needs from the running service. */
export interface Deps {
  config: Config;
  logger: Logger;
  db: ControlClient;
  controlQueries: ControlQueryCounter;
  /** Advisory locks in the control database, one session per request (see src/db/advisory-locks.ts for the order). */
  locks: AdvisoryLocks;
  clusters: ClusterRegistry;
  catalog: TemplateCatalog;
  templateDatabases: TemplateDatabases;
  /** The pooler's pools, kept equal to the active tenants (a no-op with POOLER=none). */
  pools: PoolSync;
  /** Which pooler runs, and where tenants reach it (null without one). */
  pooler: { kind: 'pgbouncer' | 'none'; description: string; address: { host: string; port: number } | null };
  /** Live connection usage: samplers, the latest samples, subscriptions. */
  usage: UsageService;
  /** Pubsub for usage samples and operation progress (in process, or Redis). */
  events: EventBus;
  metrics: TenantryMetrics;
  /** Fleet-wide upgrades and extension updates (persisted, resumable). */
  operations: FleetOperations;
  /** Takes stock of every tenant database; lists and readiness read what it recorded. */
  inventory: TenantInventory;
  /** Finishes work a stopped server left half-done; repairs PostgreSQL limits that drifted from the records. */
  recovery: TenantRecovery;
  /** Readiness, computed in the background (what /health/ready and the health query serve). */
  readiness: ReadinessMonitor;
  /** API keys → viewers: cached per process, revocations heard from every replica, failures rate-limited. */
  auth: ApiKeyAuthenticator;
  /** The bounded budget for reads a request makes live in a tenant database or pg_stat_activity. */
  liveReads: LiveReadBudget;
  /** What each cluster offers (pg_available_extensions), cached for CATALOG_CACHE_MS. */
  offeredExtensions: OfferedExtensions;
  hooks: Hooks;
}
