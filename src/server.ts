import type { AddressInfo } from 'node:net';
import pg from 'pg';
import type { Config } from './config.js';
import { createControlClient } from './db/control-client.js';
import { CONTROL_LOCK_POOL } from './db/connection-budget.js';
import { prepareControlDatabase } from './db/control-database.js';
import { ClusterRegistry } from './domain/clusters/cluster-registry.js';
import type { Deps, Hooks } from './domain/deps.js';
import { bootstrapAdminKey } from './domain/keys/api-keys.js';
import { TemplateCatalog } from './domain/templates/template-catalog.js';
import { TemplateDatabases } from './domain/templates/template-databases.js';
import { startPooler, type Pooler } from './domain/pools/pooler-setup.js';
import { checkReadiness } from './domain/health/readiness.js';
import { TenantInventory } from './domain/inventory/tenant-inventory.js';
import { serve } from './http/http-server.js';
import { TenantryMetrics } from './metrics.js';
import { EventBus } from './domain/events/event-bus.js';
import { UsageService } from './domain/usage/usage-service.js';
import { FleetOperations } from './domain/operations/fleet-operations.js';
import type { Logger } from './logger.js';

export interface Tenantry {
  /** Base URL, e.g. http://127.0.0.1:4000 */
  url: string;
  deps: Deps;
  /** Set only on the very first start without ADMIN_API_KEY: to be shown once. */
  generatedAdminKey: string | null;
  pooler: Pooler;
  close(): Promise<void>;
}

/**
 * Brings up the service on `serverUrl` (the PostgreSQL server holding the control
 * database, which is also the default managed cluster) and serves it over HTTP.
 */
export async function startTenantry(options: { config: Config; serverUrl: string; logger: Logger; hooks?: Hooks }): Promise<Tenantry> {
  const { config, logger } = options;
  // What has been started so far, stopped in reverse if a later step fails (and by close()).
  const stack: (() => Promise<void>)[] = [];
  const unwind = async () => {
    for (const stop of stack.splice(0).reverse()) await stop().catch((err) => logger.error({ err }, 'stopping failed'));
  };
  try {
    const control = await prepareControlDatabase(options.serverUrl, config.CONTROL_DATABASE);
    for (const m of control.applied) logger.info({ migration: m.name }, 'control database migrated');

    const { db, counter: controlQueries } = createControlClient(control.url);
    stack.push(() => db.$disconnect());
    const controlPool = new pg.Pool({ connectionString: control.url, max: CONTROL_LOCK_POOL, application_name: 'tenantry-locks' });
    controlPool.on('error', (err) => logger.warn({ err }, 'control database connection lost'));
    stack.push(() => controlPool.end());
    const clusters = new ClusterRegistry(db, options.serverUrl);
    stack.push(() => clusters.close());
    const defaultCluster = await clusters.ensureDefault();
    const { generatedKey } = await bootstrapAdminKey(db, config.ADMIN_API_KEY);
    const catalog = await TemplateCatalog.load(config.TEMPLATES_DIR);

    const metrics = new TenantryMetrics();
    const pooler = await startPooler({ config, cluster: defaultCluster, db, logger, registry: metrics.registry, beforeRestart: options.hooks?.beforePoolerRestart });
    stack.push(() => pooler.stop());
    logger.info({ pooler: pooler.kind }, pooler.description);
    const pools = pooler.pools;

    const events = EventBus.create({ redisUrl: config.REDIS_URL, prefix: config.REDIS_CHANNEL_PREFIX ?? `tenantry:${config.CONTROL_DATABASE}` });
    stack.push(() => events.close());
    const usage = new UsageService({
      db,
      controlUrl: control.url,
      clusters,
      bus: events,
      metrics,
      logger,
      timing: {
        intervalMs: config.USAGE_SAMPLE_MS,
        idleIntervalMs: Math.max(config.USAGE_IDLE_SAMPLE_MS, config.USAGE_SAMPLE_MS),
        heartbeatMs: config.USAGE_HEARTBEAT_MS,
        retentionDays: config.USAGE_RETENTION_DAYS,
      },
      maxSubscriptionsPerSocket: config.MAX_SUBSCRIPTIONS_PER_SOCKET,
    });
    stack.push(() => usage.stop());

    const deps = {
      config,
      logger,
      db,
      controlQueries,
      controlPool,
      clusters,
      catalog,
      templateDatabases: new TemplateDatabases(catalog, config.CONTROL_DATABASE, logger, pools),
      pools,
      pooler: { kind: pooler.kind, description: pooler.description, address: pooler.driver?.address ?? null },
      usage,
      events,
      metrics,
      hooks: options.hooks ?? {},
    } as Omit<Deps, 'operations' | 'inventory'> as Deps;
    // Operations run the same domain code as single-tenant calls, so they need the rest first.
    deps.operations = new FleetOperations(deps, control.url);
    stack.push(() => deps.operations.stop());
    await usage.start([defaultCluster.id]);

    // A freshly started pooler knows no pools: the first reconciliation gives it every tenant's.
    const startReport = await pools.reconcile();
    if (startReport.actions.length) logger.info({ report: startReport }, 'pools reconciled at start');
    pools.startTimer(config.RECONCILE_INTERVAL_MS, (report) => {
      if (report.actions.length || report.outcome !== 'IN_SYNC') logger.info({ report }, 'pools reconciled');
    });

    deps.inventory = new TenantInventory(deps);
    stack.push(() => deps.inventory.stop());
    // Readiness reads what the inventory found: take stock once before serving, then on a timer.
    await deps.inventory.run();
    deps.inventory.startTimer(config.INVENTORY_INTERVAL_MS);
    const readiness = await checkReadiness(deps);
    if (!readiness.ready) logger.error({ reasons: readiness.reasons }, 'not ready');
    if (readiness.warnings.length) logger.warn({ warnings: readiness.warnings }, 'readiness warnings');
    deps.operations.resumeUnfinished(config.OPERATION_RESUME_INTERVAL_MS);
    const { server, websockets } = await serve(deps, config);
    stack.push(async () => {
      await websockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const { port } = server.address() as AddressInfo;
    const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
    let closing: Promise<void> | undefined;
    return {
      url: `http://${host}:${port}`,
      deps,
      generatedAdminKey: generatedKey,
      pooler,
      close: () => (closing ??= unwind()),
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
