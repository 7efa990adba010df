import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import { withCheckedOutClient } from '../../platform/db/checked-out-client.js';
import { applyMigrations } from '../../platform/db/migrations.js';
import { SCHEMA_MIGRATION_LOCK, templateLockKey } from '../../platform/locks/lock-names.js';
import type { Logger } from '../../platform/logger.js';
import {
  createEmptyDatabase,
  createExtensionSchema,
  databaseExists,
  dropDatabase,
  EXTENSION_SCHEMA,
  revokeConnectFromPublic,
  sealTemplateDatabase,
  unsealTemplateDatabase,
} from '../tenants/index.js';
import { installExtensions } from '../extensions/index.js';
import { schemaVersionLedger, TENANT_COMPONENT } from './schema-version-ledger.js';
import type { TemplateCatalog, TemplateVersion } from './template-catalog.js';

/**
 * How a template database is laid out beyond its template's SQL (the extensions schema, the
 * pooler's lookup function, grants): part of its name, so a change prepares new ones.
 */
const TEMPLATE_LAYOUT = 2;

/**
 * Each template version is prepared once per cluster as a sealed template database
 * (extensions installed, every migration step applied); tenants are then created from
 * it with `CREATE DATABASE ... TEMPLATE`, a file copy instead of replaying SQL.
 * The name carries a fingerprint of the SQL, so an edited template is prepared anew.
 */
export class TemplateDatabases {
  private readonly prepared = new Map<string, Promise<string>>();

  constructor(
    private readonly p: {
      catalog: TemplateCatalog;
      /** The control database's name: it scopes every template database's name, so separate control planes never share one. */
      controlDatabase: string;
      logger: Logger;
      /**
       * Run in each new template database once its extensions are in, before the template's SQL
       * (tenants copy what it makes): the pools module installs PgBouncer's auth_query lookup
       * function there (a no-op without PgBouncer, or on a cluster it does not front).
       */
      installPoolerLookup?: (cluster: ClusterAdmin, client: pg.Client) => Promise<void>;
    },
  ) {}

  nameFor(version: TemplateVersion): string {
    const fingerprint = createHash('sha256').update(`layout ${TEMPLATE_LAYOUT}`).update(this.p.catalog.fingerprint(version)).digest('hex').slice(0, 10);
    const base = `${this.p.controlDatabase}_tpl_${version.template}_${version.version}`.replace(/[^a-z0-9_]/g, '_');
    return `${base.slice(0, 63 - fingerprint.length - 1)}_${fingerprint}`;
  }

  /**
   * Forgets a template database this process prepared (someone dropped it): the next
   * ensure() looks at the cluster again and prepares it anew.
   */
  forget(cluster: ClusterAdmin, version: TemplateVersion): void {
    this.prepared.delete(`${cluster.id}/${this.nameFor(version)}`);
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
    const { rows } = await cluster.query<{ datname: string }>(`SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE $1`, [`${this.p.controlDatabase}\\_tpl\\_%`]);
    for (const { datname } of rows) {
      await cluster.query(unsealTemplateDatabase(datname));
      await cluster.query(dropDatabase(datname));
    }
    this.prepared.clear();
  }

  private prepare(cluster: ClusterAdmin, version: TemplateVersion, name: string): Promise<string> {
    return withCheckedOutClient(cluster.pool, async (lock) => {
      // Held on the managed server itself: any control plane preparing this name waits (longer
      // than an ordinary lock wait: preparing takes a moment).
      await lock.query(`SET lock_timeout = '120s'`);
      await lock.query('SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtextextended($1, 0))', [templateLockKey(name)]);
      try {
        return await this.prepareLocked(cluster, version, name);
      } finally {
        await lock.query('SELECT pg_catalog.pg_advisory_unlock_all()').catch(() => undefined);
        await lock.query('RESET lock_timeout').catch(() => undefined);
      }
    });
  }

  private async prepareLocked(cluster: ClusterAdmin, version: TemplateVersion, name: string): Promise<string> {
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
        const steps = this.p.catalog.stepsTo(version);
        await client.query(createExtensionSchema);
        await installExtensions(client, version.extensions);
        await this.p.installPoolerLookup?.(cluster, client);
        // The template's SQL creates its tables in public and may use what the extensions define.
        await client.query(`SELECT pg_catalog.set_config('search_path', $1, false)`, [`public, ${EXTENSION_SCHEMA}`]);
        await applyMigrations(
          client,
          steps.map((s) => s.migration),
          schemaVersionLedger({ component: TENANT_COMPONENT, appliedBy: 'tenantry', database: 'template' }),
          { lockKey: SCHEMA_MIGRATION_LOCK },
        );
      });
      await cluster.query(revokeConnectFromPublic(name));
      await cluster.query(sealTemplateDatabase(name));
    } catch (err) {
      await cluster.query(dropDatabase(name)).catch(() => undefined);
      throw err;
    }
    this.p.logger.info({ template: version.template, version: version.version, database: name, ms: Date.now() - started }, 'template database prepared');
    return name;
  }
}
