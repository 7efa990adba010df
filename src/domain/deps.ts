import type pg from 'pg';
import type { Config } from '../config.js';
import type { ControlClient, ControlQueryCounter } from '../db/control-client.js';
import type { Logger } from '../logger.js';
import type { ClusterRegistry } from './clusters/cluster-registry.js';
import type { PoolSync } from './pools/pool-sync.js';
import type { UsageService } from './usage/usage-service.js';
import type { EventBus } from './events/event-bus.js';
import type { FleetOperations } from './operations/fleet-operations.js';
import type { TenantInventory } from './inventory/tenant-inventory.js';
import type { TenantryMetrics } from '../metrics.js';
import type { TemplateCatalog } from './templates/template-catalog.js';
import type { TemplateDatabases } from './templates/template-databases.js';
import type { ProvisionStep } from './tenants/provisioning-steps.js';

/** Test seams: let a test fail a step on purpose. Never set in production. */
export interface Hooks {
  beforeProvisionStep?: (step: ProvisionStep, tenantSlug: string) => void | Promise<void>;
  beforeOperationItem?: (kind: string, tenantSlug: string) => void | Promise<void>;
  /** Awaited before Tenantry restarts a PgBouncer that exited (lets a test look at the outage). */
  beforePoolerRestart?: () => void | Promise<void>;
}

/** What the domain needs from the running service. */
export interface Deps {
  config: Config;
  logger: Logger;
  db: ControlClient;
  controlQueries: ControlQueryCounter;
  /** Plain pg access to the control database, for advisory locks. */
  controlPool: pg.Pool;
  clusters: ClusterRegistry;
  catalog: TemplateCatalog;
  templateDatabases: TemplateDatabases;
  /** The pooler's pools, kept equal to the active tenants (a no-op with POOLER=none). */
  pools: PoolSync;
  /** Which pooler runs, and where tenants reach it (null without one). */
  pooler: { kind: 'pgbouncer' | 'pgcat' | 'none'; description: string; address: { host: string; port: number } | null };
  /** Live connection usage: samplers, the latest samples, subscriptions. */
  usage: UsageService;
  /** Pubsub for usage samples and operation progress (in process, or Redis). */
  events: EventBus;
  metrics: TenantryMetrics;
  /** Fleet-wide upgrades and extension updates (persisted, resumable). */
  operations: FleetOperations;
  /** Takes stock of every tenant database; lists and readiness read what it recorded. */
  inventory: TenantInventory;
  hooks: Hooks;
}
