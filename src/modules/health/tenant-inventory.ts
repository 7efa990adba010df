import type { Prisma, Tenant, TenantInventory as InventoryRecord } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsInOrder } from '../../platform/db/rows-in-order.js';
import type { DomainEvents } from '../../platform/domain-events.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import type { Logger } from '../../platform/logger.js';
import { PeriodicTask } from '../../platform/periodic-task.js';
import { recordAuditEvent } from '../audit/index.js';
import type { ClusterRegistry } from '../clusters/index.js';
import { readInstalledExtensions, type TenantExtensions } from '../extensions/index.js';
import type { SchemaVersionStore, TemplateCatalog } from '../templates/index.js';
import { databasePresent, presentTables } from './inventory.sql.js';
import { readSchemaVersion, SchemaVersionTableError, TENANT_COMPONENT } from '../tenants/index.js';

/** What the inventory last recorded for a tenant (table tenant_inventory). */
export type { InventoryRecord };

export interface InventoryFinding {
  tenantId: string;
  slug: string;
  databasePresent: boolean;
  missingTables: string[];
  /** What differed from Tenantry's records (the records now follow the database). */
  drift: string[];
  error: string | null;
}

export interface InventoryProgress {
  running: boolean;
  /** Tenants in the pass under way (or the last one). */
  total: number;
  checked: number;
  /** Tenants skipped because a change held their lock, or their cluster could not be reached (looked at next time). */
  skipped: number;
  startedAt: Date | null;
  finishedAt: Date | null;
  passes: number;
}

const OP = { actor: 'inventory', correlationId: 'inventory' };
const PASS_CONCURRENCY = 4;
/** A single check asked for after a change waits this long (changes close together share one look; a busy tenant is retried this often). */
const SOON_DELAY_MS = 50;

/**
 * Visits every tenant database (bounded concurrency, direct connections, in the background)
 * and compares it with what the control database records: schema version, extensions, the
 * template's tables. Changes made behind Tenantry's back are drift: reported in the API and
 * the audit trail, and the records are brought in line with what is really there. Lists and
 * readiness read these records, never the tenant databases. Reads only the catalog and
 * `__SchemaVersion` once it is known to be the control plane's own table (no tenant-made
 * object is ever read as the control plane).
 */
export class TenantInventory {
  /** The passes over the fleet (`run`, `start`). */
  private readonly passes: PeriodicTask;
  /** The single checks asked for by `checkSoon`, SOON_DELAY_MS after the first ask. */
  private readonly singles: PeriodicTask;
  private intervalMs = 0;
  /** How the last pass ended (what `run` returns). */
  private lastPass: { findings: InventoryFinding[] } | { error: unknown } | undefined;
  /** Tenants to look at soon; `soonAsked`: a single-check run is already asked for. */
  private readonly soon = new Set<string>();
  private soonAsked = false;
  private stopped = false;
  /** run() asked for the next pass to look at every tenant (a scheduled pass looks only at those not seen within the interval). */
  private everyTenantAsked = false;
  /** `idle()` callers waiting for tenants to be looked at soon, woken whenever a batch of single checks ends. */
  private waiters: (() => void)[] = [];
  private readonly state: InventoryProgress = { running: false, total: 0, checked: 0, skipped: 0, startedAt: null, finishedAt: null, passes: 0 };

  constructor(
    private readonly p: {
      db: ControlClient;
      logger: Logger;
      clusters: ClusterRegistry;
      catalog: TemplateCatalog;
      locks: TenantLocks;
      events: DomainEvents;
      tenantExtensions: TenantExtensions;
      schemaVersions: SchemaVersionStore;
    },
  ) {
    this.passes = new PeriodicTask({ name: 'inventory', intervalMs: () => this.intervalMs, logger: p.logger, run: () => this.passOnce() });
    this.singles = new PeriodicTask({
      name: 'inventory of single tenants',
      intervalMs: () => (this.soon.size > 0 ? SOON_DELAY_MS : 0),
      logger: p.logger,
      run: () => this.drainSoon(),
    });
    // Runs only when asked (checkSoon); started now so that an ask schedules it.
    this.singles.start();
    // A change to a tenant's database: take a fresh look at it soon (its records follow what is there).
    p.events.subscribe('tenant.changed', ({ tenantId, inventory }) => {
      if (inventory) this.checkSoon(tenantId);
    });
  }

  progress(): InventoryProgress {
    return { ...this.state };
  }

  /** What the inventory recorded for each tenant (null: never looked at), one query for a page, in the order of `tenantIds`. */
  async byTenantIds(tenantIds: readonly string[]): Promise<(InventoryRecord | null)[]> {
    const rows = await this.p.db.tenantInventory.findMany({ where: { tenantId: { in: [...tenantIds] } } });
    return rowsInOrder(tenantIds, rows, (r) => r.tenantId);
  }

  /**
   * One pass over the fleet, started after this call (a pass already under way may have read
   * the fleet before what the caller just changed: the new one follows it); calls made while
   * one is waiting share it. Its findings, sorted by slug.
   */
  async run(): Promise<InventoryFinding[]> {
    if (this.stopped) return [];
    this.everyTenantAsked = true;
    await this.passes.runNow();
    const last = this.lastPass;
    if (!last) return [];
    if ('error' in last) throw last.error;
    return last.findings;
  }

  /**
   * A pass now in the background, then one every `intervalMs` after the last ended (0: none after
   * the first). A scheduled pass looks only at tenants whose record is older than `intervalMs`
   * (or missing): a restart does not look into the whole fleet again, and a tenant looked at after
   * a change is not looked at again so soon. With `intervalMs` 0, every tenant.
   */
  start(intervalMs: number): void {
    this.intervalMs = intervalMs;
    this.passes.start();
  }

  /** A look at one tenant soon, in the background (after a change, or on demand); a tenant whose lock is held is retried. */
  checkSoon(tenantId: string): void {
    if (this.stopped) return;
    this.soon.add(tenantId);
    if (this.soonAsked) return;
    this.soonAsked = true;
    // Started outside the caller's locks: the look waits for (or skips) a change that holds them.
    this.p.locks.detached(() => this.singles.reschedule());
  }

  /** Resolves once no pass and no single check is running or asked for (tests wait for it before measuring). */
  async idle(): Promise<void> {
    for (;;) {
      // A task's idle() also covers the run asked for behind the one under way.
      await Promise.all([this.passes.idle(), this.singles.idle()]);
      if (this.soon.size === 0 || this.stopped) return;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.passes.stop(), this.singles.stop()]);
    this.wake();
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  private async passOnce(): Promise<void> {
    try {
      this.lastPass = { findings: await this.pass() };
    } catch (error) {
      this.lastPass = { error };
      throw error;
    }
  }

  private async drainSoon(): Promise<void> {
    const ids = [...this.soon];
    this.soon.clear();
    this.soonAsked = false;
    if (ids.length === 0) return;
    try {
      const tenants = await this.p.db.tenant.findMany({ where: { id: { in: ids }, status: { in: ['ACTIVE', 'SUSPENDED'] } } }).catch(() => []);
      for (const tenant of tenants) {
        if (this.stopped) return;
        const result = await this.checkUnlessBusy(tenant).catch((err) => {
          this.p.logger.warn({ err, tenant: tenant.slug }, 'inventory of one tenant failed');
          return null;
        });
        if (result && 'busy' in result) this.checkSoon(tenant.id);
      }
    } finally {
      this.wake();
    }
  }

  private async checkUnlessBusy(tenant: Tenant): Promise<InventoryFinding | { busy: true }> {
    // A tenant being changed right now (upgrade, provisioning…) is looked at later: half-way through a change is not drift.
    return this.p.locks.tryTenantLock(tenant, () => this.check(tenant));
  }

  private async pass(): Promise<InventoryFinding[]> {
    const everyTenant = this.everyTenantAsked || this.intervalMs === 0;
    this.everyTenantAsked = false;
    const stale: Prisma.TenantWhereInput = everyTenant ? {} : { OR: [{ inventory: null }, { inventory: { checkedAt: { lt: new Date(Date.now() - this.intervalMs) } } }] };
    const tenants = await this.p.db.tenant.findMany({ where: { status: { in: ['ACTIVE', 'SUSPENDED'] }, ...stale }, orderBy: { slug: 'asc' } });
    Object.assign(this.state, { running: true, total: tenants.length, checked: 0, skipped: 0, startedAt: new Date(), finishedAt: null });
    const findings: InventoryFinding[] = [];
    // A cluster that cannot be reached is not looked into tenant by tenant (each would wait out the
    // connect timeout): its tenants keep their last record, readiness reports the cluster, and the next pass tries again.
    const down = await this.unreachableClusters(new Set(tenants.map((t) => t.clusterId)));
    const queue = tenants.filter((t) => !down.has(t.clusterId));
    this.state.skipped += tenants.length - queue.length;
    let lastLog = Date.now();
    const worker = async () => {
      for (let tenant = queue.shift(); tenant && !this.stopped; tenant = queue.shift()) {
        const result = await this.checkUnlessBusy(tenant).catch((err: Error) => ({ ...emptyFinding(tenant), error: err.message.slice(0, 500) }));
        if ('busy' in result) this.state.skipped++;
        else findings.push(result);
        this.state.checked++;
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          this.p.logger.info({ checked: this.state.checked, total: this.state.total }, 'inventory in progress');
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(PASS_CONCURRENCY, queue.length) }, worker));
    } finally {
      Object.assign(this.state, { running: false, finishedAt: new Date(), passes: this.state.passes + 1 });
    }
    const sorted = findings.sort((a, b) => a.slug.localeCompare(b.slug));
    // Readiness rebuilds every tenant's health from these records before the pass counts as done.
    await this.p.events.publish('inventory.checked', { tenantId: null });
    return sorted;
  }

  /** Of these clusters, those that do not answer one statement now (one per cluster, at once). */
  private async unreachableClusters(clusterIds: Set<string>): Promise<Set<string>> {
    const down = new Set<string>();
    await Promise.all(
      [...clusterIds].map(async (id) => {
        try {
          await (await this.p.clusters.get(id)).query('SELECT 1');
        } catch (err) {
          down.add(id);
          this.p.logger.warn({ err, clusterId: id }, 'a cluster cannot be reached: the inventory leaves its tenants for the next pass');
        }
      }),
    );
    return down;
  }

  /** Looks at one tenant database and records what it found (the caller holds the tenant's lock). */
  async check(tenant: Tenant): Promise<InventoryFinding> {
    const { db, logger, clusters, catalog } = this.p;
    const finding = emptyFinding(tenant);
    try {
      const cluster = await clusters.get(tenant.clusterId);
      const present = await cluster.query(databasePresent, [tenant.databaseName]);
      if (!present.rowCount) {
        finding.databasePresent = false;
        finding.drift.push(`database ${tenant.databaseName} is missing`);
      } else {
        const seen = await cluster.withDatabase(tenant.databaseName, async (client) => {
          const required = catalog.resolve(tenant.templateName, tenant.templateVersion)?.tables ?? [];
          const { rows: tables } = await client.query<{ relname: string }>(presentTables, [required]);
          const missingTables = required.filter((t) => !tables.some((r) => r.relname === t));
          const live = await readSchemaVersion(client).catch((err) => {
            if (err instanceof SchemaVersionTableError) return err;
            throw err;
          });
          return { missingTables, live, installed: await readInstalledExtensions(client) };
        });
        finding.missingTables = seen.missingTables;
        if (seen.live instanceof SchemaVersionTableError) {
          finding.missingTables.push('__SchemaVersion');
          finding.drift.push(seen.live.message);
        } else {
          const recorded = await db.tenantSchemaVersion.findUnique({ where: { tenantId_component: { tenantId: tenant.id, component: TENANT_COMPONENT } } });
          if (seen.live && seen.live.version !== recorded?.version) {
            finding.drift.push(`schema version is ${seen.live.version}, recorded ${recorded?.version ?? 'nothing'}`);
            await this.p.schemaVersions.mirrorSchemaVersion(tenant.id, seen.live);
          } else if (!seen.live) {
            finding.drift.push('no schema version in __SchemaVersion');
          }
        }
        const known = new Map((await db.tenantExtension.findMany({ where: { tenantId: tenant.id } })).map((e) => [e.name, e.version]));
        for (const [name, version] of seen.installed) {
          if (!known.has(name)) finding.drift.push(`extension ${name} ${version} is installed, not recorded`);
          else if (known.get(name) !== version) finding.drift.push(`extension ${name} is at ${version}, recorded ${known.get(name)}`);
        }
        for (const [name, version] of known) if (!seen.installed.has(name)) finding.drift.push(`extension ${name} ${version} is recorded, not installed`);
        if (finding.drift.some((d) => d.startsWith('extension'))) await this.p.tenantExtensions.recordExtensions(tenant.id, seen.installed);
      }
    } catch (err) {
      finding.error = (err as Error).message.slice(0, 500);
    }

    const record = { checkedAt: new Date(), databasePresent: finding.databasePresent, missingTables: finding.missingTables, drift: finding.drift, error: finding.error };
    await db.$transaction(async (tx) => {
      const previous = await tx.tenantInventory.findUnique({ where: { tenantId: tenant.id } });
      await tx.tenantInventory.upsert({ where: { tenantId: tenant.id }, create: { tenantId: tenant.id, ...record }, update: record });
      const news = finding.drift.length > 0 || (finding.missingTables.length > 0 && JSON.stringify(previous?.missingTables) !== JSON.stringify(finding.missingTables));
      if (news) {
        await recordAuditEvent(tx, OP, { category: 'inventory', action: 'tenant.drift.detected', tenant, subject: tenant.databaseName, metadata: { drift: finding.drift, missingTables: finding.missingTables } });
        logger.warn({ tenant: tenant.slug, drift: finding.drift, missingTables: finding.missingTables }, 'tenant drift detected');
      }
    });
    // Outside a pass (which tells readiness once, at its end): readiness follows this tenant now.
    if (!this.state.running) await this.p.events.publish('inventory.checked', { tenantId: tenant.id });
    return finding;
  }
}

function emptyFinding(tenant: Tenant): InventoryFinding {
  return { tenantId: tenant.id, slug: tenant.slug, databasePresent: true, missingTables: [], drift: [], error: null };
}
