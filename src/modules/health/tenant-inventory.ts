import type { Tenant } from '../../generated/prisma/client.js';
import { tryTenantLock } from '../../platform/locks/locking.js';
import { recordAuditEvent } from '../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { readInstalledExtensions, recordExtensions } from '../extensions/tenant-extensions.js';
import { TENANT_COMPONENT } from '../templates/schema-version-ledger.js';
import { mirrorSchemaVersion, readSchemaVersion, SchemaVersionTableError } from '../tenants/schema-version-record.js';

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
  /** Tenants skipped because a change held their lock (looked at next time). */
  skipped: number;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Passes completed since start. */
  passes: number;
}

const OP = { actor: 'inventory', correlationId: 'inventory' };
const PASS_CONCURRENCY = 4;

/** Which of the template's tables exist in `public` (catalog only). */
const PRESENT_TABLES = `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1::pg_catalog.text[])`;

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
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<InventoryFinding[]> | undefined;
  private readonly soon = new Set<string>();
  private soonTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly state: InventoryProgress = { running: false, total: 0, checked: 0, skipped: 0, startedAt: null, finishedAt: null, passes: 0 };
  /** Called after each pass (readiness recomputes its cached report). */
  onPass: (findings: InventoryFinding[]) => Promise<void> = async () => undefined;
  /** Called after each single tenant's check (readiness refreshes that tenant). */
  onCheck: (tenantId: string) => Promise<void> = async () => undefined;

  constructor(private readonly deps: Deps) {}

  progress(): InventoryProgress {
    return { ...this.state };
  }

  /** One pass over the fleet (a second call while one runs joins it). */
  run(): Promise<InventoryFinding[]> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  /** A pass now in the background, then one every `intervalMs` (0: none after the first). */
  start(intervalMs: number): void {
    const runLogged = () =>
      void this.run().catch((err) => {
        this.deps.logger.error({ err }, 'inventory failed');
      });
    runLogged();
    if (intervalMs > 0) {
      this.timer = setInterval(runLogged, intervalMs);
      this.timer.unref();
    }
  }

  /** A look at one tenant soon, in the background (after a change, or on demand); a tenant whose lock is held is retried. */
  checkSoon(tenantId: string): void {
    if (this.stopped) return;
    this.soon.add(tenantId);
    // Started outside the caller's locks: the look waits for (or skips) a change that holds them.
    this.soonTimer ??= this.deps.locks.detached(() => setTimeout(() => void this.drainSoon(), 50));
    this.soonTimer.unref?.();
  }

  /** Resolves once no pass and no single check is running or queued (tests wait for it before measuring). */
  async idle(): Promise<void> {
    while (this.running || this.soon.size > 0 || this.draining) {
      await this.running?.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soonTimer);
    await this.running?.catch(() => undefined);
  }

  private draining = false;

  private async drainSoon(): Promise<void> {
    this.draining = true;
    try {
      await this.drainSoonNow();
    } finally {
      this.draining = false;
    }
  }

  private async drainSoonNow(): Promise<void> {
    const ids = [...this.soon];
    this.soon.clear();
    this.soonTimer = undefined;
    const tenants = await this.deps.db.tenant.findMany({ where: { id: { in: ids }, status: { in: ['ACTIVE', 'SUSPENDED'] } } }).catch(() => []);
    for (const tenant of tenants) {
      if (this.stopped) return;
      const result = await this.checkUnlessBusy(tenant).catch((err) => {
        this.deps.logger.warn({ err, tenant: tenant.slug }, 'inventory of one tenant failed');
        return null;
      });
      if (result && 'busy' in result) this.checkSoon(tenant.id);
    }
  }

  private async checkUnlessBusy(tenant: Tenant): Promise<InventoryFinding | { busy: true }> {
    const cluster = await this.deps.clusters.get(tenant.clusterId);
    // A tenant being changed right now (upgrade, provisioning…) is looked at later: half-way through a change is not drift.
    return tryTenantLock(this.deps, cluster, tenant, () => this.check(tenant));
  }

  private async pass(): Promise<InventoryFinding[]> {
    const tenants = await this.deps.db.tenant.findMany({ where: { status: { in: ['ACTIVE', 'SUSPENDED'] } }, orderBy: { slug: 'asc' } });
    Object.assign(this.state, { running: true, total: tenants.length, checked: 0, skipped: 0, startedAt: new Date(), finishedAt: null });
    const findings: InventoryFinding[] = [];
    const queue = [...tenants];
    let lastLog = Date.now();
    const worker = async () => {
      for (let tenant = queue.shift(); tenant && !this.stopped; tenant = queue.shift()) {
        const result = await this.checkUnlessBusy(tenant).catch((err: Error) => ({ ...emptyFinding(tenant), error: err.message.slice(0, 500) }));
        if ('busy' in result) this.state.skipped++;
        else findings.push(result);
        this.state.checked++;
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          this.deps.logger.info({ checked: this.state.checked, total: this.state.total }, 'inventory in progress');
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(PASS_CONCURRENCY, queue.length) }, worker));
    } finally {
      Object.assign(this.state, { running: false, finishedAt: new Date(), passes: this.state.passes + 1 });
    }
    const sorted = findings.sort((a, b) => a.slug.localeCompare(b.slug));
    await this.onPass(sorted).catch((err) => this.deps.logger.warn({ err }, 'readiness refresh after the inventory failed'));
    return sorted;
  }

  /** Looks at one tenant database and records what it found (the caller holds the tenant's lock). */
  async check(tenant: Tenant): Promise<InventoryFinding> {
    const { deps } = this;
    const finding = emptyFinding(tenant);
    try {
      const cluster = await deps.clusters.get(tenant.clusterId);
      const present = await cluster.query(`SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1`, [tenant.databaseName]);
      if (!present.rowCount) {
        finding.databasePresent = false;
        finding.drift.push(`database ${tenant.databaseName} is missing`);
      } else {
        const seen = await cluster.withDatabase(tenant.databaseName, async (client) => {
          const required = deps.catalog.resolve(tenant.templateName, tenant.templateVersion)?.tables ?? [];
          const { rows: tables } = await client.query<{ relname: string }>(PRESENT_TABLES, [required]);
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
          const recorded = await deps.db.tenantSchemaVersion.findUnique({ where: { tenantId_component: { tenantId: tenant.id, component: TENANT_COMPONENT } } });
          if (seen.live && seen.live.version !== recorded?.version) {
            finding.drift.push(`schema version is ${seen.live.version}, recorded ${recorded?.version ?? 'nothing'}`);
            await mirrorSchemaVersion(deps.db, tenant.id, seen.live);
          } else if (!seen.live) {
            finding.drift.push('no schema version in __SchemaVersion');
          }
        }
        const known = new Map((await deps.db.tenantExtension.findMany({ where: { tenantId: tenant.id } })).map((e) => [e.name, e.version]));
        for (const [name, version] of seen.installed) {
          if (!known.has(name)) finding.drift.push(`extension ${name} ${version} is installed, not recorded`);
          else if (known.get(name) !== version) finding.drift.push(`extension ${name} is at ${version}, recorded ${known.get(name)}`);
        }
        for (const [name, version] of known) if (!seen.installed.has(name)) finding.drift.push(`extension ${name} ${version} is recorded, not installed`);
        if (finding.drift.some((d) => d.startsWith('extension'))) await recordExtensions(deps.db, tenant.id, seen.installed);
      }
    } catch (err) {
      finding.error = (err as Error).message.slice(0, 500);
    }

    const record = { checkedAt: new Date(), databasePresent: finding.databasePresent, missingTables: finding.missingTables, drift: finding.drift, error: finding.error };
    await deps.db.$transaction(async (tx) => {
      const previous = await tx.tenantInventory.findUnique({ where: { tenantId: tenant.id } });
      await tx.tenantInventory.upsert({ where: { tenantId: tenant.id }, create: { tenantId: tenant.id, ...record }, update: record });
      const news = finding.drift.length > 0 || (finding.missingTables.length > 0 && JSON.stringify(previous?.missingTables) !== JSON.stringify(finding.missingTables));
      if (news) {
        await recordAuditEvent(tx, OP, { category: 'inventory', action: 'tenant.drift.detected', tenant, subject: tenant.databaseName, metadata: { drift: finding.drift, missingTables: finding.missingTables } });
        deps.logger.warn({ tenant: tenant.slug, drift: finding.drift, missingTables: finding.missingTables }, 'tenant drift detected');
      }
    });
    if (!this.state.running) await this.onCheck(tenant.id).catch(() => undefined);
    return finding;
  }
}

function emptyFinding(tenant: Tenant): InventoryFinding {
  return { tenantId: tenant.id, slug: tenant.slug, databasePresent: true, missingTables: [], drift: [], error: null };
}
