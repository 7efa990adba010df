import { tryWithAdvisoryLock } from '../../db/advisory-lock.js';
import type { Tenant } from '../../generated/prisma/client.js';
import { tenantLockName } from '../tenants/tenant-lock.js';
import { recordAuditEvent } from '../audit/audit-log.js';
import type { Deps } from '../deps.js';
import { readInstalledExtensions, recordExtensions } from '../extensions/tenant-extensions.js';
import { TENANT_COMPONENT } from '../templates/schema-version-ledger.js';
import { mirrorSchemaVersion, readSchemaVersion } from '../templates/schema-version-record.js';

export interface InventoryFinding {
  tenantId: string;
  slug: string;
  databasePresent: boolean;
  missingTables: string[];
  /** What differed from Tenantry's records (the records now follow the database). */
  drift: string[];
  error: string | null;
}

const OP = { actor: 'inventory', correlationId: 'inventory' };

/**
 * Visits every tenant database (bounded concurrency, direct connections) and compares it
 * with what the control database records: schema version, extensions, the template's
 * tables. Changes made behind Tenantry's back are drift: reported in the API and the
 * audit trail, and the records are brought in line with what is really there. Lists and
 * readiness read these records, never the tenant databases.
 */
export class TenantInventory {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<InventoryFinding[]> | undefined;

  constructor(private readonly deps: Deps) {}

  /** One pass over the fleet (a second call while one runs joins it). */
  run(): Promise<InventoryFinding[]> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  startTimer(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => void this.run().catch((err) => this.deps.logger.error({ err }, 'inventory failed')), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  private async pass(): Promise<InventoryFinding[]> {
    const tenants = await this.deps.db.tenant.findMany({ where: { status: { in: ['ACTIVE', 'SUSPENDED'] } }, orderBy: { slug: 'asc' } });
    const findings: InventoryFinding[] = [];
    const queue = [...tenants];
    const worker = async () => {
      for (let tenant = queue.shift(); tenant; tenant = queue.shift()) {
        // A tenant being changed right now (upgrade, provisioning…) is looked at next time:
        // half-way through a change is not drift.
        const cluster = await this.deps.clusters.get(tenant.clusterId);
        const result = await tryWithAdvisoryLock(this.deps.controlPool, tenantLockName(cluster.id, tenant.databaseName), () => this.check(tenant));
        if (!('busy' in result)) findings.push(result);
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, queue.length) }, worker));
    return findings.sort((a, b) => a.slug.localeCompare(b.slug));
  }

  /** Looks at one tenant database and records what it found (the caller holds the tenant's lock). */
  async check(tenant: Tenant): Promise<InventoryFinding> {
    const { deps } = this;
    const finding: InventoryFinding = { tenantId: tenant.id, slug: tenant.slug, databasePresent: true, missingTables: [], drift: [], error: null };
    try {
      const cluster = await deps.clusters.get(tenant.clusterId);
      const present = await cluster.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [tenant.databaseName]);
      if (!present.rowCount) {
        finding.databasePresent = false;
        finding.drift.push(`database ${tenant.databaseName} is missing`);
      } else {
        await cluster.withDatabase(tenant.databaseName, async (client) => {
          const required = [...(deps.catalog.resolve(tenant.templateName, tenant.templateVersion)?.tables ?? []), '__SchemaVersion'];
          const { rows: tables } = await client.query<{ table_name: string }>(
            `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY($1::text[])`,
            [required],
          );
          finding.missingTables = required.filter((t) => !tables.some((r) => r.table_name === t));

          const live = finding.missingTables.includes('__SchemaVersion') ? null : await readSchemaVersion(client);
          const recorded = await deps.db.tenantSchemaVersion.findUnique({ where: { tenantId_component: { tenantId: tenant.id, component: TENANT_COMPONENT } } });
          if (live && live.version !== recorded?.version) {
            finding.drift.push(`schema version is ${live.version}, recorded ${recorded?.version ?? 'nothing'}`);
            await mirrorSchemaVersion(deps.db, tenant.id, live);
          } else if (!live) {
            finding.drift.push('no schema version in __SchemaVersion');
          }

          const installed = await readInstalledExtensions(client);
          const known = new Map((await deps.db.tenantExtension.findMany({ where: { tenantId: tenant.id } })).map((e) => [e.name, e.version]));
          for (const [name, version] of installed) {
            if (!known.has(name)) finding.drift.push(`extension ${name} ${version} is installed, not recorded`);
            else if (known.get(name) !== version) finding.drift.push(`extension ${name} is at ${version}, recorded ${known.get(name)}`);
          }
          for (const [name, version] of known) if (!installed.has(name)) finding.drift.push(`extension ${name} ${version} is recorded, not installed`);
          if (finding.drift.some((d) => d.startsWith('extension'))) await recordExtensions(deps.db, tenant.id, installed);
        });
      }
    } catch (err) {
      finding.error = (err as Error).message.slice(0, 500);
    }

    const previous = await deps.db.tenantInventory.findUnique({ where: { tenantId: tenant.id } });
    await deps.db.tenantInventory.upsert({
      where: { tenantId: tenant.id },
      create: { tenantId: tenant.id, checkedAt: new Date(), databasePresent: finding.databasePresent, missingTables: finding.missingTables, drift: finding.drift, error: finding.error },
      update: { checkedAt: new Date(), databasePresent: finding.databasePresent, missingTables: finding.missingTables, drift: finding.drift, error: finding.error },
    });
    const news = finding.drift.length > 0 || (finding.missingTables.length > 0 && JSON.stringify(previous?.missingTables) !== JSON.stringify(finding.missingTables));
    if (news) {
      await recordAuditEvent(deps.db, OP, { category: 'inventory', action: 'tenant.drift.detected', tenant, subject: tenant.databaseName, metadata: { drift: finding.drift, missingTables: finding.missingTables } });
      deps.logger.warn({ tenant: tenant.slug, drift: finding.drift, missingTables: finding.missingTables }, 'tenant drift detected');
    }
    return finding;
  }
}
