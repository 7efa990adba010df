import type pg from 'pg';
import type { ClusterAdmin } from '../../db/cluster-admin.js';
import { applyMigrations } from '../../db/migrations.js';
import type { Logger } from '../../logger.js';
import { createEmptyDatabase, databaseExists, dropDatabase, revokeConnectFromPublic, sealTemplateDatabase, unsealTemplateDatabase } from '../../sql/databases.sql.js';
import { installExtensions } from '../extensions/install-extensions.js';
import { SCHEMA_MIGRATION_LOCK, schemaVersionLedger, TENANT_COMPONENT } from './schema-version-ledger.js';
import type { TemplateCatalog, TemplateVersion } from './template-catalog.js';

/**
 * Each template version is prepared once per cluster as a sealed template database
 * (extensions installed, every migration step applied); tenants are then created from
 * it with `CREATE DATABASE ... TEMPLATE`, a file copy instead of replaying SQL.
 * The name carries a fingerprint of the SQL, so an edited template is prepared anew.
 */
export class TemplateDatabases {
  private readonly prepared = new Map<string, Promise<string>>();

  constructor(
    private readonly catalog: TemplateCatalog,
    /** Names are scoped by the control database, so separate control planes never share one. */
    private readonly scope: string,
    private readonly logger: Logger,
    /** Installs PgBouncer's auth_query lookup function (a no-op without PgBouncer). */
    private readonly pooler?: { installLookup(cluster: ClusterAdmin, client: pg.Client): Promise<void> },
  ) {}

  nameFor(version: TemplateVersion): string {
    const fingerprint = this.catalog.fingerprint(version).slice(0, 10);
    const base = `${this.scope}_tpl_${version.template}_${version.version}`.replace(/[^a-z0-9_]/g, '_');
    return `${base.slice(0, 63 - fingerprint.length - 1)}_${fingerprint}`;
  }

  /** The template database for `version` on `cluster`, preparing it if needed. */
  ensure(cluster: ClusterAdmin, version: TemplateVersion): Promise<string> {
    const name = this.nameFor(version);
    const key = `${cluster.id}/${name}`;
    let pending = this.prepared.get(key);
    if (!pending) {
      pending = this.prepare(cluster, version, name);
      this.prepared.set(key, pending);
      pending.catch(() => this.prepared.delete(key));
    }
    return pending;
  }

  /** Drops every template database of this control plane on `cluster` (used by tests and teardown). */
  async dropAll(cluster: ClusterAdmin): Promise<void> {
    const { rows } = await cluster.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${this.scope}\\_tpl\\_%`]);
    for (const { datname } of rows) {
      await cluster.query(unsealTemplateDatabase(datname));
      await cluster.query(dropDatabase(datname));
    }
    this.prepared.clear();
  }

  private async prepare(cluster: ClusterAdmin, version: TemplateVersion, name: string): Promise<string> {
    const lock = await cluster.pool.connect();
    try {
      // Held on the managed server itself: any control plane preparing this name waits.
      await lock.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`tenantry:template:${name}`]);
      const { rows } = await cluster.query<{ datistemplate: boolean }>(databaseExists, [name]);
      if (rows[0]?.datistemplate) return name;
      if (rows[0]) {
        // Left half-prepared by a server that stopped mid-way: start again.
        await cluster.query(dropDatabase(name));
      }
      const started = Date.now();
      await cluster.query(createEmptyDatabase(name));
      try {
        await cluster.withDatabase(name, async (client) => {
          const steps = this.catalog.stepsTo(version);
          await installExtensions(client, version.extensions);
          await this.pooler?.installLookup(cluster, client);
          await applyMigrations(
            client,
            steps.map((s) => s.migration),
            schemaVersionLedger({ component: TENANT_COMPONENT, appliedBy: 'tenantry' }),
            { lockKey: SCHEMA_MIGRATION_LOCK },
          );
        });
        await cluster.query(revokeConnectFromPublic(name));
        await cluster.query(sealTemplateDatabase(name));
      } catch (err) {
        await cluster.query(dropDatabase(name)).catch(() => undefined);
        throw err;
      }
      this.logger.info({ template: version.template, version: version.version, database: name, ms: Date.now() - started }, 'template database prepared');
      return name;
    } finally {
      await lock.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      lock.release();
    }
  }
}
