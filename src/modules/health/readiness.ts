import type { Prisma } from '../../generated/prisma/client.js';
import type { Config } from '../../platform/config.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { loadControlMigrations } from '../../platform/db/control-migrations.js';
import type { DomainEvents } from '../../platform/domain-events.js';
import type { EventBus } from '../../platform/events/event-bus.js';
import type { Logger } from '../../platform/logger.js';
import { PeriodicTask } from '../../platform/periodic-task.js';
import type { ClusterRegistry, ClusterStore } from '../clusters/index.js';
import { availableExtensions, extensionReport, type TenantExtensions } from '../extensions/index.js';
import type { Pooler } from '../pools/index.js';
import type { CapacityPlanner } from '../quotas/index.js';
import { compatibilityOf, type TemplateCatalog } from '../templates/index.js';
import type { InventoryProgress, TenantInventory } from './tenant-inventory.js';

export interface ReadinessCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface TenantHealth {
  slug: string;
  problems: string[];
  /** An INCOMPATIBLE schema recorded by Tenantry itself: it makes a production server not ready. */
  blocking: boolean;
}

export interface ReadinessReport {
  ready: boolean;
  /** Ready, but a check failed that does not make it unready (the event bus, a managed cluster). */
  degraded: boolean;
  mode: 'production' | 'development';
  checks: ReadinessCheck[];
  tenantsChecked: number;
  /** Tenants with problems (at most TENANT_LIST_LIMIT of them; `tenantsWithProblems` counts all). */
  tenants: TenantHealth[];
  tenantsWithProblems: number;
  inventory: InventoryProgress | null;
  /** Why the server is not ready (empty when ready). */
  reasons: string[];
  /** Problems that do not make it not ready (in development: all of them). */
  warnings: string[];
  checkedAt: Date;
}

const TENANT_LIST_LIMIT = 50;
/** Checks whose failure makes a production server not ready. */
const HARD_CHECKS = new Set(['control-database', 'pooler']);

/**
 * While the control database or the pooler is down, readiness looks again this often (instead
 * of every READINESS_INTERVAL_MS), so /health/ready says ready within about a second of its
 * return; a request that finds a database unreachable asks for a look at most this often too.
 */
const RECHECK_WHILE_DOWN_MS = 1000;

/** The migrations this build ships: read from disk once, then known for the life of the process. */
let shippedMigrations: Promise<string[]> | undefined;
const migrationNames = () => (shippedMigrations ??= loadControlMigrations().then((ms) => ms.map((m) => m.name)));

/** What a tenant's health is judged from: its records. */
const WITH_RECORDS = { inventory: true, extensions: true, schemaVersions: true } as const;
type TenantWithRecords = Prisma.TenantGetPayload<{ include: typeof WITH_RECORDS }>;

/**
 * Readiness, computed in the background and served from memory: a probe never reaches a
 * database. The cheap checks (control database, clusters, pooler) run every
 * READINESS_INTERVAL (every second while the control database or the pooler is down, and at
 * once when a request finds a database unreachable); each tenant's health (from what the
 * inventory recorded: database, required tables, extensions against policy, schema
 * compatibility) is rebuilt after every inventory pass, and one tenant's after a single check
 * or a change to it.
 *
 * In production an unreachable or unmigrated control database, a pooler that is down, or a
 * tenant Tenantry itself recorded as INCOMPATIBLE makes the server not ready. Nothing a
 * tenant does to its own database can: a tenant's own objects only ever produce warnings.
 */
export class ReadinessMonitor {
  private checks: ReadinessCheck[] = [];
  /** Advice that is no reason to be unready (a cluster that fits few default tenants). */
  private advice: string[] = [];
  private offered = new Map<string, Map<string, string[]>>();
  private readonly tenants = new Map<string, TenantHealth>();
  private tenantsChecked = 0;
  private report: ReadinessReport;
  private readonly task: PeriodicTask;
  private intervalMs = 0;
  private started = false;
  private lastCheckStarted = 0;
  private readonly unsubscribe: (() => void)[];
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly p: {
      db: ControlClient;
      config: Pick<Config, 'NODE_ENV'>;
      logger: Logger;
      clusters: ClusterRegistry;
      clusterStore: ClusterStore;
      catalog: TemplateCatalog;
      /** The pooler: its driver and configuration writes (pools), and what runs (description). */
      pooler: Pooler;
      /** The cross-replica bus: its link to Redis is a check of its own. */
      events: EventBus;
      domainEvents: DomainEvents;
      inventory: TenantInventory;
      capacity: CapacityPlanner;
      tenantExtensions: TenantExtensions;
    },
  ) {
    this.report = this.assemble();
    this.task = new PeriodicTask({
      name: 'readiness',
      intervalMs: () => (this.checks.some((c) => !c.ok && HARD_CHECKS.has(c.name)) ? Math.min(this.intervalMs, RECHECK_WHILE_DOWN_MS) : this.intervalMs),
      logger: p.logger,
      run: () => this.refreshChecks().catch((err) => p.logger.warn({ err }, 'readiness check failed')),
    });
    const { domainEvents, logger } = p;
    this.unsubscribe = [
      // After an inventory pass every tenant's health is rebuilt; after a single check, that tenant's.
      domainEvents.subscribe('inventory.checked', ({ tenantId }) =>
        tenantId === null
          ? this.refreshTenants().catch((err) => logger.warn({ err }, 'readiness refresh after the inventory failed'))
          : this.refreshTenant(tenantId).catch((err) => logger.warn({ err, tenantId }, 'readiness refresh failed')),
      ),
      // The pooler's files turning unwritable (or writable again) changes readiness at once.
      domainEvents.subscribe('pooler.writable', () => this.refreshChecks().catch((err) => logger.warn({ err }, 'readiness check failed'))),
      // Readiness follows a tenant's records at once after a change (one small query), not at the
      // next pass; a quota change touches nothing it judges.
      domainEvents.subscribe('tenant.changed', ({ tenantId, health }) => (health ? this.refreshTenant(tenantId).catch((err) => logger.warn({ err, tenantId }, 'readiness refresh failed')) : undefined)),
    ];
  }

  current(): ReadinessReport {
    return this.report;
  }

  /** Computes everything once now, then the cheap checks every `intervalMs` (every second while a hard check fails). */
  async start(intervalMs: number): Promise<void> {
    this.intervalMs = intervalMs;
    this.started = true;
    // The event bus reports its own changes: the report follows at once, not at the next interval.
    this.unsubscribe.push(this.p.events.onLink(() => (this.report = this.assemble())));
    // The task's first run is under way: this joins it (and fails if it does).
    this.task.start();
    await this.refreshChecks();
    await this.refreshTenants();
  }

  async stop(): Promise<void> {
    for (const off of this.unsubscribe) off();
    await this.task.stop();
  }

  /** A request found a database unreachable: check now rather than at the next interval (at most once a second). */
  recheckSoon(): void {
    if (!this.started || Date.now() - this.lastCheckStarted < RECHECK_WHILE_DOWN_MS) return;
    void this.task.runNow(); // nothing once stopped
  }

  /** The control database, every cluster, the pooler: a handful of tiny statements. */
  refreshChecks(): Promise<void> {
    if (!this.refreshing) {
      this.lastCheckStarted = Date.now();
      this.refreshing = this.computeChecks().finally(() => (this.refreshing = undefined));
    }
    return this.refreshing;
  }

  private async computeChecks(): Promise<void> {
    const { db, clusters, clusterStore, capacity } = this.p;
    const checks: ReadinessCheck[] = [];
    const advice: string[] = [];
    try {
      const applied = await db.$queryRaw<{ migration_name: string }[]>`SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`;
      const missing = (await migrationNames()).filter((n) => !applied.some((a) => a.migration_name === n));
      checks.push({ name: 'control-database', ok: missing.length === 0, detail: missing.length === 0 ? `reachable, ${applied.length} migrations applied` : `migrations not applied: ${missing.join(', ')}` });
    } catch (err) {
      checks.push({ name: 'control-database', ok: false, detail: `unreachable: ${(err as Error).message}` });
    }
    if (checks[0]!.ok) {
      // Every cluster at once, each on its own: one that is down (or slow to refuse) delays and fails only its own check.
      const results = await Promise.all(
        (await clusterStore.list()).map(async (row): Promise<ReadinessCheck> => {
          try {
            const cluster = await clusters.get(row.id);
            const facts = await cluster.facts();
            if (!this.offered.has(row.id)) {
              const offered = await cluster.query<{ name: string; versions: string[] }>(availableExtensions);
              this.offered.set(row.id, new Map(offered.rows.map((o) => [o.name, o.versions])));
            }
            const fit = await capacity.capacityAdvice(cluster, facts);
            if (fit.warning) advice.push(fit.warning);
            return { name: `cluster:${row.name}`, ok: true, detail: `PostgreSQL ${facts.serverVersion}; ${fit.summary}` };
          } catch (err) {
            return { name: `cluster:${row.name}`, ok: false, detail: `unreachable: ${(err as Error).message}${await this.strandedTenants(row.id)}` };
          }
        }),
      );
      checks.push(...results);
    }
    checks.push(await poolerCheck(this.p.pooler));
    this.checks = checks;
    this.advice = advice;
    this.report = this.assemble();
  }

  /** Which tenants a cluster that is down takes with it (the first few by slug, and how many). */
  private async strandedTenants(clusterId: string): Promise<string> {
    const where = { clusterId, status: { in: ['ACTIVE' as const, 'SUSPENDED' as const] } };
    try {
      const [count, first] = await Promise.all([this.p.db.tenant.count({ where }), this.p.db.tenant.findMany({ where, select: { slug: true }, orderBy: { slug: 'asc' }, take: 10 })]);
      if (count === 0) return '; no tenants on it';
      return `; its ${count} tenant${count === 1 ? ' is' : 's are'} unavailable (${first.map((t) => t.slug).join(', ')}${count > first.length ? ', …' : ''}); tenants on other clusters are not affected`;
    } catch {
      return '';
    }
  }

  /** Every tenant's health from its records (after an inventory pass). */
  async refreshTenants(): Promise<void> {
    const rows = await this.p.db.tenant.findMany({ where: { status: { in: ['ACTIVE', 'SUSPENDED'] } }, include: WITH_RECORDS, orderBy: { slug: 'asc' } });
    this.tenants.clear();
    for (const t of rows) this.judge(t);
    this.tenantsChecked = rows.length;
    this.report = this.assemble();
  }

  /** One tenant's health again (after a change or a single check). */
  async refreshTenant(tenantId: string): Promise<void> {
    const t = await this.p.db.tenant.findUnique({ where: { id: tenantId }, include: WITH_RECORDS });
    this.tenants.delete(tenantId);
    if (t && (t.status === 'ACTIVE' || t.status === 'SUSPENDED')) this.judge(t);
    this.report = this.assemble();
  }

  /** Keeps the tenant's health when it has problems. */
  private judge(t: TenantWithRecords): void {
    const problems: string[] = [];
    let blocking = false;
    const inv = t.inventory;
    if (!inv) problems.push('not inventoried yet');
    else {
      if (!inv.databasePresent) problems.push(`database ${t.databaseName} is missing`);
      for (const table of inv.missingTables as string[]) problems.push(`table ${table} is missing`);
      if (inv.error) problems.push(`inventory could not read it: ${inv.error}`);
    }
    if (!t.securedAt) problems.push('provisioned before Tenantry owned tenant databases: the SECURE_TENANTS operation brings it under the ownership model');
    const version = t.schemaVersions[0]?.version;
    const expected = this.p.catalog.resolve(t.templateName)?.version;
    if (version && expected && compatibilityOf(version, expected) === 'INCOMPATIBLE') {
      problems.push(`schema ${version} is INCOMPATIBLE with ${t.templateName} ${expected}`);
      // Only a version the tenant cannot have forged (its database is Tenantry's) blocks readiness.
      blocking = t.securedAt !== null;
    }
    const offered = this.offered.get(t.clusterId);
    if (offered) {
      for (const e of extensionReport(this.p.tenantExtensions.policyOf(t), new Map(t.extensions.map((x) => [x.name, x.version])), offered)) {
        if (e.status !== 'OK') problems.push(`extension ${e.name} is ${e.status}${e.installedVersion ? ` (${e.installedVersion})` : ''}`);
      }
    }
    if (problems.length) this.tenants.set(t.id, { slug: t.slug, problems, blocking });
  }

  private assemble(): ReadinessReport {
    const production = this.p.config.NODE_ENV === 'production';
    const hard: string[] = [];
    const soft: string[] = [];
    const inventory = this.p.inventory.progress();
    if (this.checks.length === 0) hard.push('readiness has not been checked yet');
    const checks = this.checks.length && this.p.events.transport === 'redis' ? [...this.checks, eventBusCheck(this.p.events)] : this.checks;
    for (const c of checks) {
      if (c.ok) continue;
      if (HARD_CHECKS.has(c.name)) hard.push(`${c.name}: ${c.detail}`);
      else soft.push(`${c.name}: ${c.detail}`);
    }
    soft.push(...this.advice);
    if (inventory.running) soft.push(`inventory in progress: ${inventory.checked} of ${inventory.total} tenants checked`);
    const withProblems = this.allTenantProblems();
    for (const t of withProblems.slice(0, TENANT_LIST_LIMIT)) (t.blocking ? hard : soft).push(`tenant ${t.slug}: ${t.problems.join('; ')}`);
    for (const t of withProblems.slice(TENANT_LIST_LIMIT)) if (t.blocking) hard.push(`tenant ${t.slug}: ${t.problems.join('; ')}`);
    if (withProblems.length > TENANT_LIST_LIMIT) soft.push(`${withProblems.length - TENANT_LIST_LIMIT} more tenants have problems (the health query lists them all)`);
    const reasons = production ? hard : [];
    const warnings = production ? soft : [...hard, ...soft];
    return {
      ready: reasons.length === 0,
      degraded: reasons.length === 0 && checks.some((c) => !c.ok),
      mode: production ? 'production' : 'development',
      checks,
      tenantsChecked: this.tenantsChecked,
      tenants: withProblems.slice(0, TENANT_LIST_LIMIT),
      tenantsWithProblems: withProblems.length,
      inventory,
      reasons,
      warnings,
      checkedAt: new Date(),
    };
  }

  /** Every tenant with a problem, by slug (for the admins' health query). */
  allTenantProblems(): TenantHealth[] {
    return [...this.tenants.values()].sort((a, b) => a.slug.localeCompare(b.slug));
  }
}

/**
 * Redis, when replicas share one: while it is unreachable this replica hears no other (live
 * usage sampled elsewhere stops, subscribers are told their streams are degraded). Not a
 * reason to be unready: every replica shares the one Redis, and taking them all out of a
 * load balancer would stop queries and mutations too, which do not need it.
 */
function eventBusCheck(events: EventBus): ReadinessCheck {
  const link = events.link;
  if (link.up) return { name: 'event-bus', ok: true, detail: 'Redis reachable' };
  // No error yet: the first connection is under way (at start).
  const state = link.error ? `Redis unreachable since ${link.since.toISOString()} (${link.error})` : `connecting to Redis since ${link.since.toISOString()}`;
  const detail = `${state}: live usage sampled by other replicas is not arriving; their subscribers here get degraded heartbeats`;
  return { name: 'event-bus', ok: false, detail };
}

async function poolerCheck(pooler: Pooler): Promise<ReadinessCheck> {
  const driver = pooler.pools.driver;
  if (!driver) return { name: 'pooler', ok: true, detail: pooler.description };
  try {
    await driver.ping();
  } catch (err) {
    return { name: 'pooler', ok: false, detail: `${driver.kind} unreachable: ${(err as Error).message}` };
  }
  // Reachable is not enough: a pooler whose configuration cannot be written runs an old one.
  const { error } = pooler.pools.configWrite;
  if (error) return { name: 'pooler', ok: false, detail: `${driver.kind} reachable, but its configuration cannot be written: ${error}` };
  return { name: 'pooler', ok: true, detail: `${driver.kind} reachable` };
}
