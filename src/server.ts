import pg from 'pg';
import type { Config } from './platform/config.js';
import { AdvisoryLocks } from './platform/locks/advisory-locks.js';
import type { SessionLimits } from './platform/db/cluster-admin.js';
import { CONTROL_LOCK_POOL } from './platform/db/connection-budget.js';
import { createControlClient } from './platform/db/control-client.js';
import { prepareControlDatabase } from './platform/db/control-database.js';
import { describeMissingPrivileges, readControlPlanePrivileges } from './platform/db/control-plane-privileges.js';
import { checkNothingLeftBySuperuser } from './platform/db/least-privilege-switch.js';
import { startupOptions } from './platform/db/session-settings.js';
import { ClusterRegistry } from './modules/clusters/cluster-registry.js';
import type { Deps, Hooks } from './deps.js';
import { EventBus } from './platform/events/event-bus.js';
import { ReadinessMonitor } from './modules/health/readiness.js';
import { TenantInventory } from './modules/health/tenant-inventory.js';
import { bootstrapAdminKey } from './modules/keys/api-keys.js';
import { FleetOperations } from './modules/operations/fleet-operations.js';
import { capacityAdvice } from './modules/quotas/cluster-capacity.js';
import { startPooler, type Pooler } from './modules/pools/pooler-setup.js';
import { TemplateCatalog } from './modules/templates/template-catalog.js';
import { TemplateDatabases } from './modules/templates/template-databases.js';
import { TenantRecovery } from './modules/provisioning/tenant-recovery.js';
import { UsageService } from './modules/usage/usage-service.js';
import { HttpFront } from './http/http-server.js';
import type { Logger } from './platform/logger.js';
import { TenantryMetrics } from './platform/metrics.js';
import { ApiKeyAuthenticator } from './modules/keys/key-authenticator.js';
import { LiveReadBudget } from './platform/live-read-budget.js';
import { OfferedExtensions } from './modules/extensions/offered-extensions.js';

export interface Tenantry {
  /** Base URL, e.g. http://127.0.0.1:4000 */
  url: string;
  deps: Deps;
  /** Set only while no ADMIN key exists and ADMIN_API_KEY is unset: to be shown, then committed. */
  generatedAdminKey: string | null;
  /** Stores the generated key (by hash): call it once the key has been shown. */
  commitAdminKey(): Promise<void>;
  pooler: Pooler;
  /** What this instance holds for live clients (tests count it; see test/subscriber-memory.test.ts). */
  liveCounts(): ReturnType<HttpFront['liveCounts']>;
  close(): Promise<void>;
}

/**
 * Brings up the service on `serverUrl` (the PostgreSQL server holding the control
 * database, which is also the default managed cluster). The HTTP port is bound before
 * anything else (or given, already bound, as `front`): a busy port stops the start before
 * it touches PostgreSQL, the pooler or the admin key. /health/live answers from the first
 * moment; the inventory, recovery and readiness run in the background once serving.
 */
export async function startTenantry(options: { config: Config; serverUrl: string; logger: Logger; hooks?: Hooks; front?: HttpFront }): Promise<Tenantry> {
  const { config, logger } = options;
  const front = options.front ?? (await HttpFront.listen(config, logger));
  // What has been started so far, stopped in reverse if a later step fails (and by close()).
  // Clients go first: requests and subscriptions end before what they use closes under them.
  const stack: (() => Promise<void>)[] = [];
  const unwind = async () => {
    await front.close().catch((err) => logger.error({ err }, 'closing the HTTP server failed'));
    for (const stop of stack.splice(0).reverse()) await stop().catch((err) => logger.error({ err }, 'stopping failed'));
  };
  try {
    const limits: SessionLimits = { statementTimeoutMs: config.STATEMENT_TIMEOUT_MS, lockTimeoutMs: config.LOCK_TIMEOUT_MS, connectTimeoutMs: config.POOL_ACQUIRE_TIMEOUT_MS };
    front.phase = 'checking privileges';
    const privileges = await readControlPlanePrivileges(options.serverUrl, limits.connectTimeoutMs);
    if (privileges.missing.length) throw new Error(describeMissingPrivileges(privileges));
    logger.info({ role: privileges.role, superuser: privileges.superuser }, privileges.superuser ? 'control plane runs as a superuser' : 'control plane runs as a least-privilege role');
    // An install that ran as a superuser: what it made must be handed over first (the error says how).
    const switchSettings = { controlDatabase: config.CONTROL_DATABASE, poolerLookupRole: config.POOLER_LOOKUP_ROLE, poolerAuthUser: config.POOLER_AUTH_USER };
    if (!privileges.superuser) await checkNothingLeftBySuperuser(options.serverUrl, switchSettings, [], limits.connectTimeoutMs);

    front.phase = 'preparing the control database';
    const control = await prepareControlDatabase(options.serverUrl, config.CONTROL_DATABASE);
    for (const m of control.applied) logger.info({ migration: m.name }, 'control database migrated');

    const { db, counter: controlQueries } = createControlClient(control.url, limits);
    stack.push(() => db.$disconnect());
    const lockPool = new pg.Pool({
      connectionString: control.url,
      max: CONTROL_LOCK_POOL,
      application_name: 'tenantry-locks',
      options: startupOptions({ lockTimeoutMs: config.LOCK_TIMEOUT_MS, statementTimeoutMs: config.STATEMENT_TIMEOUT_MS }),
      connectionTimeoutMillis: config.POOL_ACQUIRE_TIMEOUT_MS,
    });
    lockPool.on('error', (err) => logger.warn({ err }, 'control database connection lost'));
    stack.push(() => lockPool.end());
    const clusters = new ClusterRegistry(db, options.serverUrl, limits);
    stack.push(() => clusters.close());
    const defaultCluster = await clusters.ensureDefault();
    if (!privileges.superuser) {
      const tenants = await db.tenant.findMany({ where: { clusterId: defaultCluster.id }, select: { databaseName: true } });
      await checkNothingLeftBySuperuser(options.serverUrl, switchSettings, tenants.map((t) => t.databaseName), limits.connectTimeoutMs);
    }
    const adminKey = await bootstrapAdminKey(db, config.ADMIN_API_KEY);
    const catalog = await TemplateCatalog.load(config.TEMPLATES_DIR);

    front.phase = 'starting the pooler';
    const metrics = new TenantryMetrics();
    metrics.countControlStatements(controlQueries);
    const pooler = await startPooler({ config, cluster: defaultCluster, db, logger, registry: metrics.registry, beforeRestart: options.hooks?.beforePoolerRestart });
    stack.push(() => pooler.stop());
    logger.info({ pooler: pooler.kind }, pooler.description);
    const pools = pooler.pools;

    const events = EventBus.create({ redisUrl: config.REDIS_URL, prefix: config.REDIS_CHANNEL_PREFIX ?? `tenantry:${config.CONTROL_DATABASE}`, logger, metrics });
    stack.push(() => events.close());
    const usage = new UsageService({
      db,
      clusters,
      bus: events,
      metrics,
      logger,
      timing: {
        intervalMs: config.USAGE_SAMPLE_MS,
        idleIntervalMs: Math.max(config.USAGE_IDLE_SAMPLE_MS, config.USAGE_SAMPLE_MS),
        heartbeatMs: config.USAGE_HEARTBEAT_MS,
        retentionDays: config.USAGE_RETENTION_DAYS,
        leaseMs: config.USAGE_LEASE_MS,
      },
      subscriberQueue: config.USAGE_SUBSCRIBER_QUEUE,
      maxSubscriptionsPerSocket: config.MAX_SUBSCRIPTIONS_PER_SOCKET,
      pooler: { clusterId: defaultCluster.id, driver: () => pools.driver },
    });
    stack.push(() => usage.stop());
    const auth = new ApiKeyAuthenticator({
      db,
      events,
      logger,
      cacheMs: config.API_KEY_CACHE_MS,
      failureLimit: config.AUTH_FAILURE_LIMIT,
      failureWindowMs: config.AUTH_FAILURE_WINDOW_MS,
      beforeAuthenticate: options.hooks?.beforeAuthenticate,
    });
    auth.start();
    stack.push(() => auth.close());

    const deps = {
      config,
      logger,
      db,
      controlQueries,
      locks: new AdvisoryLocks(lockPool),
      clusters,
      catalog,
      templateDatabases: new TemplateDatabases(catalog, config.CONTROL_DATABASE, logger, pools),
      pools,
      pooler: { kind: pooler.kind, description: pooler.description, address: pooler.driver?.address ?? null },
      usage,
      events,
      metrics,
      hooks: options.hooks ?? {},
      auth,
      liveReads: new LiveReadBudget({ concurrency: config.LIVE_READ_CONCURRENCY, queue: config.LIVE_READ_QUEUE }),
      offeredExtensions: new OfferedExtensions(clusters, config.CATALOG_CACHE_MS),
    } as Omit<Deps, 'operations' | 'inventory' | 'recovery' | 'readiness'> as Deps;
    // Operations run the same domain code as single-tenant calls, so they need the rest first.
    deps.operations = new FleetOperations(deps, control.url);
    stack.push(() => deps.operations.stop());
    deps.inventory = new TenantInventory(deps);
    stack.push(() => deps.inventory.stop());
    deps.recovery = new TenantRecovery(deps);
    stack.push(() => deps.recovery.stop());
    deps.readiness = new ReadinessMonitor(deps);
    stack.push(async () => deps.readiness.stop());
    deps.inventory.onPass = () => deps.readiness.refreshTenants();
    deps.inventory.onCheck = (tenantId) => deps.readiness.refreshTenant(tenantId);
    // The pooler's files turning unwritable (or writable again) changes readiness at once.
    pools.on('configWrite', () => void deps.readiness.refreshChecks().catch((err) => logger.warn({ err }, 'readiness check failed')));
    await usage.start([defaultCluster.id]);

    front.phase = 'checking readiness';
    await deps.readiness.start(config.READINESS_INTERVAL_MS);
    const readiness = deps.readiness.current();
    if (!readiness.ready) logger.error({ reasons: readiness.reasons }, 'not ready');
    if (readiness.warnings.length) logger.warn({ warnings: readiness.warnings.slice(0, 20) }, 'readiness warnings');
    const capacity = await capacityAdvice(deps, defaultCluster);
    if (capacity.warning) logger.warn(capacity.warning);
    else logger.info(capacity.summary);
    front.attach(deps);

    // In the background from here: the pooler catching up, the fleet's inventory (progress in
    // /health/ready), interrupted work, fleet operations a stopped server left.
    void pools.reconcile().then(
      (report) => report.actions.length && logger.info({ report }, 'pools reconciled at start'),
      (err) => logger.error({ err }, 'pool reconciliation at start failed'),
    );
    pools.startTimer(config.RECONCILE_INTERVAL_MS, (report) => {
      if (report.actions.length || report.outcome !== 'IN_SYNC') logger.info({ report }, 'pools reconciled');
    });
    deps.inventory.start(config.INVENTORY_INTERVAL_MS);
    deps.recovery.start(config.RECOVERY_INTERVAL_MS);
    deps.operations.resumeUnfinished(config.OPERATION_RESUME_INTERVAL_MS);
    void deps.operations.secureLegacyTenants().catch((err) => logger.error({ err }, 'starting the operation that secures legacy tenants failed'));

    let closing: Promise<void> | undefined;
    return {
      url: front.url,
      deps,
      generatedAdminKey: adminKey.generatedKey,
      commitAdminKey: adminKey.commit,
      pooler,
      liveCounts: () => front.liveCounts(),
      close: () => (closing ??= unwind()),
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
