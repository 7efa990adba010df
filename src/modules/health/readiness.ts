import { loadControlMigrations } from '../../platform/db/control-migrations.js';
import { availableExtensions } from '../extensions/extensions.sql.js';
import type { Deps } from '../../deps.js';
import { extensionReport } from '../extensions/extension-status.js';
import { policyOf } from '../extensions/tenant-extensions.js';
import type { InventoryProgress } from './tenant-inventory.js';
import { compatibilityOf } from '../templates/compatibility.js';
import { capacityAdvice } from '../quotas/cluster-capacity.js';

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

/**
 * Readiness, computed in the background and served from memory: a probe never reaches a
 * database. The cheap checks (control database, clusters, pooler) run every
 * READINESS_INTERVAL (every second while the control database or the pooler is down, and at
 * once when a request finds a database unreachable); each tenant's health (from what the inventory recorded: database,
 * required tables, extensions against policy, schema compatibility) is rebuilt after every
 * inventory pass and refreshed one tenant at a time after single checks.
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
  private timer: NodeJS.Timeout | undefined;
  private intervalMs = 0;
  private stopped = false;
  private lastCheckStarted = 0;
  private stopWatchingBus: (() => void) | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly deps: Deps) {
    this.report = this.assemble();
  }

  current(): ReadinessReport {
    return this.report;
  }

  /** Computes everything once now, then the cheap checks every `intervalMs` (every second while a hard check fails). */
  async start(intervalMs: number): Promise<void> {
    this.intervalMs = intervalMs;
    // The event bus reports its own changes: the report follows at once, not at the next interval.
    this.stopWatchingBus = this.deps.events.onLink(() => (this.report = this.assemble()));
    await this.refreshChecks();
    await this.refreshTenants();
    this.scheduleNext();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stopWatchingBus?.();
  }

  /** A request found a database unreachable: check now rather than at the next interval (at most once a second). */
  recheckSoon(): void {
    if (this.stopped || this.intervalMs === 0 || Date.now() - this.lastCheckStarted < RECHECK_WHILE_DOWN_MS) return;
    this.schedule(0);
  }

  private scheduleNext(): void {
    const down = this.checks.some((c) => !c.ok && HARD_CHECKS.has(c.name));
    this.schedule(down ? Math.min(this.intervalMs, RECHECK_WHILE_DOWN_MS) : this.intervalMs);
  }

  /** One timer at a time: a later call replaces the pending one. */
  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.refreshChecks()
        .catch((err) => this.deps.logger.warn({ err }, 'readiness check failed'))
        .finally(() => this.scheduleNext());
    }, delayMs);
    this.timer.unref();
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
    const { deps } = this;
    const checks: ReadinessCheck[] = [];
    const advice: string[] = [];
    try {
      const applied = await deps.db.$queryRaw<{ migration_name: string }[]>`SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`;
      const missing = (await migrationNames()).filter((n) => !applied.some((a) => a.migration_name === n));
      checks.push({ name: 'control-database', ok: missing.length === 0, detail: missing.length === 0 ? `reachable, ${applied.length} migrations applied` : `migrations not applied: ${missing.join(', ')}` });
    } catch (err) {
      checks.push({ name: 'control-database', ok: false, detail: `unreachable: ${(err as Error).message}` });
    }
    if (checks[0]!.ok) {
      for (const row of await deps.db.cluster.findMany({ orderBy: { name: 'asc' } })) {
        try {
          const cluster = await deps.clusters.get(row.id);
          const facts = await cluster.facts();
          if (!this.offered.has(row.id)) {
            const offered = await cluster.query<{ name: string; versions: string[] }>(availableExtensions);
            this.offered.set(row.id, new Map(offered.rows.map((o) => [o.name, o.versions])));
          }
          const capacity = await capacityAdvice(deps, cluster, facts);
          if (capacity.warning) advice.push(capacity.warning);
          checks.push({ name: `cluster:${row.name}`, ok: true, detail: `PostgreSQL ${facts.serverVersion}; ${capacity.summary}` });
        } catch (err) {
          checks.push({ name: `cluster:${row.name}`, ok: false, detail: `unreachable: ${(err as Error).message}` });
        }
      }
    }
    checks.push(await poolerCheck(deps));
    this.checks = checks;
    this.advice = advice;
    this.report = this.assemble();
  }

  /** Every tenant's health from its records (after an inventory pass). */
  async refreshTenants(): Promise<void> {
    const rows = await this.deps.db.tenant.findMany({
      where: { status: { in: ['ACTIVE', 'SUSPENDED'] } },
      include: { inventory: true, extensions: true, schemaVersions: true },
      orderBy: { slug: 'asc' },
    });
    this.tenants.clear();
    for (const t of rows) {
      const health = this.healthOf(t);
      if (health.problems.length) this.tenants.set(t.id, health);
    }
    this.tenantsChecked = rows.length;
    this.report = this.assemble();
  }

  /** One tenant's health again (after a change or a single check). */
  async refreshTenant(tenantId: string): Promise<void> {
    const t = await this.deps.db.tenant.findUnique({ where: { id: tenantId }, include: { inventory: true, extensions: true, schemaVersions: true } });
    this.tenants.delete(tenantId);
    if (t && (t.status === 'ACTIVE' || t.status === 'SUSPENDED')) {
      const health = this.healthOf(t);
      if (health.problems.length) this.tenants.set(t.id, health);
    }
    this.report = this.assemble();
  }

  private healthOf(t: {
    slug: string;
    clusterId: string;
    databaseName: string;
    templateName: string;
    templateVersion: string;
    securedAt: Date | null;
    inventory: { databasePresent: boolean; missingTables: unknown; error: string | null } | null;
    extensions: { name: string; version: string }[];
    schemaVersions: { version: string }[];
  }): TenantHealth {
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
    const expected = this.deps.catalog.resolve(t.templateName)?.version;
    if (version && expected && compatibilityOf(version, expected) === 'INCOMPATIBLE') {
      problems.push(`schema ${version} is INCOMPATIBLE with ${t.templateName} ${expected}`);
      // Only a version the tenant cannot have forged (its database is Tenantry's) blocks readiness.
      blocking = t.securedAt !== null;
    }
    const offered = this.offered.get(t.clusterId);
    if (offered) {
      for (const e of extensionReport(policyOf(this.deps, t), new Map(t.extensions.map((x) => [x.name, x.version])), offered)) {
        if (e.status !== 'OK') problems.push(`extension ${e.name} is ${e.status}${e.installedVersion ? ` (${e.installedVersion})` : ''}`);
      }
    }
    return { slug: t.slug, problems, blocking };
  }

  private assemble(): ReadinessReport {
    const production = this.deps.config.NODE_ENV === 'production';
    const hard: string[] = [];
    const soft: string[] = [];
    const inventory = this.deps.inventory?.progress() ?? null;
    if (this.checks.length === 0) hard.push('readiness has not been checked yet');
    const checks = this.checks.length && this.deps.events.transport === 'redis' ? [...this.checks, eventBusCheck(this.deps)] : this.checks;
    for (const c of checks) {
      if (c.ok) continue;
      if (HARD_CHECKS.has(c.name)) hard.push(`${c.name}: ${c.detail}`);
      else soft.push(`${c.name}: ${c.detail}`);
    }
    soft.push(...this.advice);
    if (inventory?.running) soft.push(`inventory in progress: ${inventory.checked} of ${inventory.total} tenants checked`);
    const withProblems = [...this.tenants.values()].sort((a, b) => a.slug.localeCompare(b.slug));
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

  /** Every tenant with a problem (for the admins' health query). */
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
function eventBusCheck(deps: Deps): ReadinessCheck {
  const link = deps.events.link;
  if (link.up) return { name: 'event-bus', ok: true, detail: 'Redis reachable' };
  // No error yet: the first connection is under way (at start).
  const state = link.error ? `Redis unreachable since ${link.since.toISOString()} (${link.error})` : `connecting to Redis since ${link.since.toISOString()}`;
  return {
    name: 'event-bus',
    ok: false,
    detail: `${state}: live usage sampled by other replicas is not arriving; their subscribers here get degraded heartbeats`,
  };
}

async function poolerCheck(deps: Deps): Promise<ReadinessCheck> {
  const driver = deps.pools.driver;
  if (!driver) return { name: 'pooler', ok: true, detail: deps.pooler.description };
  try {
    await driver.ping();
  } catch (err) {
    return { name: 'pooler', ok: false, detail: `${driver.kind} unreachable: ${(err as Error).message}` };
  }
  // Reachable is not enough: a pooler whose configuration cannot be written runs an old one.
  const { error } = deps.pools.configWrite;
  if (error) return { name: 'pooler', ok: false, detail: `${driver.kind} reachable, but its configuration cannot be written: ${error}` };
  return { name: 'pooler', ok: true, detail: `${driver.kind} reachable` };
}
