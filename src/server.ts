import pg from 'pg';
import type { Config } from './platform/config.js';
import type { SessionLimits } from './platform/db/cluster-admin.js';
import { CONTROL_LOCK_POOL } from './platform/db/connection-budget.js';
import { createControlClient, type ControlClient, type ControlQueryCounter } from './platform/db/control-client.js';
import { prepareControlDatabase } from './platform/db/control-database.js';
import { describeMissingPrivileges, readControlPlanePrivileges } from './platform/db/control-plane-privileges.js';
import { checkNothingLeftBySuperuser } from './platform/db/least-privilege-switch.js';
import { startupOptions } from './platform/db/session-settings.js';
import { DomainEvents } from './platform/domain-events.js';
import { EventBus } from './platform/events/event-bus.js';
import { Failpoints } from './platform/failpoints.js';
import { LiveReadBudget } from './platform/live-read-budget.js';
import { AdvisoryLocks } from './platform/locks/advisory-locks.js';
import { TenantLocks } from './platform/locks/locking.js';
import type { Logger } from './platform/logger.js';
import { TenantryMetrics } from './platform/metrics.js';
import { ServiceRegistry } from './platform/services.js';
import { AuditLog } from './modules/audit/index.js';
import { ClusterAdministration, ClusterRegistry, ClusterSecrets, ClusterStore } from './modules/clusters/index.js';
import { ApiKeyAuthenticator, ApiKeys, bootstrapAdminKey } from './modules/keys/index.js';
import {
  ConnectionStrings,
  CredentialHandoffs,
  TenantAccess,
  TenantChanges,
  TenantConnections,
  TenantDeprovisioning,
  TenantLifecycle,
  TenantSecurity,
  TenantStore,
} from './modules/tenants/index.js';
import { OfferedExtensions, TenantExtensions } from './modules/extensions/index.js';
import { CapacityPlanner, ClusterPlacement, ConnectionLimits, LimitDrift, QuotaStore, QuotaUpdates } from './modules/quotas/index.js';
import { DEFAULT_TEMPLATE, SchemaUpgrades, SchemaVersionStore, TemplateCatalog, TemplateDatabases } from './modules/templates/index.js';
import { TenantProvisioning, TenantRecovery } from './modules/provisioning/index.js';
import { PoolSync, startPooler, type Pooler } from './modules/pools/index.js';
import { UsageService } from './modules/usage/index.js';
import { ReadOnlyCredentials } from './modules/credentials/index.js';
import { ReadinessMonitor, TenantInventory, TenantRefresh } from './modules/health/index.js';
import { FleetOperations } from './modules/operations/index.js';
import { ClusterEvacuation, TenantMoves } from './modules/moves/index.js';
import { LiveSessions } from './graphql/live-sessions.js';
import { HttpFront } from './http/http-server.js';

export interface TenantryParts {
  db: ControlClient;
  controlQueries: ControlQueryCounter;
  clusters: ClusterRegistry;
  locks: TenantLocks;
  events: EventBus;
  metrics: TenantryMetrics;
  pools: PoolSync;
  usage: UsageService;
  inventory: TenantInventory;
  recovery: TenantRecovery;
  liveReads: LiveReadBudget;
  offeredExtensions: OfferedExtensions;
  capacity: CapacityPlanner;
  moves: TenantMoves;
  readiness: ReadinessMonitor;
}

export interface Tenantry {
  /** Base URL, e.g. http://127.0.0.1:4000 */
  url: string;
  parts: TenantryParts;
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
export async function startTenantry(options: {
  config: Config;
  serverUrl: string;
  logger: Logger;
  /** Tests: what happens at named points (src/platform/failpoints.ts); inert when not given. */
  failpoints?: Failpoints;
  front?: HttpFront;
}): Promise<Tenantry> {
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
    const locks = new AdvisoryLocks(lockPool);
    const failpoints = options.failpoints ?? new Failpoints();
    const domainEvents = new DomainEvents(logger);
    const tenantLocks = new TenantLocks({ locks, failpoints });
    const clusterSecrets = new ClusterSecrets({ secretKey: config.CLUSTER_SECRET_KEY, home: config.TENANTRY_HOME });
    const clusters = new ClusterRegistry(db, options.serverUrl, limits, clusterSecrets);
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
    const pooler = await startPooler({ config, cluster: defaultCluster, clusters, db, logger, registry: metrics.registry, failpoints, events: domainEvents, locks: tenantLocks });
    stack.push(() => pooler.stop());
    logger.info({ pooler: pooler.kind }, pooler.description);
    const pools = pooler.pools;

    const events = EventBus.create({ redisUrl: config.REDIS_URL, prefix: config.REDIS_CHANNEL_PREFIX ?? `tenantry:${config.CONTROL_DATABASE}`, logger, metrics });
    stack.push(() => events.close());
    const timing = {
      intervalMs: config.USAGE_SAMPLE_MS,
      idleIntervalMs: Math.max(config.USAGE_IDLE_SAMPLE_MS, config.USAGE_SAMPLE_MS),
      heartbeatMs: config.USAGE_HEARTBEAT_MS,
      retentionDays: config.USAGE_RETENTION_DAYS,
      leaseMs: config.USAGE_LEASE_MS,
    };
    const pooled = { driver: () => pools.driver };
    const usage = new UsageService({ db, clusters, bus: events, metrics, logger, timing, subscriberQueue: config.USAGE_SUBSCRIBER_QUEUE, pooler: pooled });
    stack.push(() => usage.stop());
    const rateLimit = { failureLimit: config.AUTH_FAILURE_LIMIT, failureWindowMs: config.AUTH_FAILURE_WINDOW_MS };
    const auth = new ApiKeyAuthenticator({ db, events, logger, failpoints, cacheMs: config.API_KEY_CACHE_MS, ...rateLimit });
    auth.start();
    stack.push(() => auth.close());
    const liveReads = new LiveReadBudget({ concurrency: config.LIVE_READ_CONCURRENCY, queue: config.LIVE_READ_QUEUE });
    const offeredExtensions = new OfferedExtensions({ clusters, ttlMs: config.CATALOG_CACHE_MS });

    // The modules' services, lowest layer first (docs/architecture.md): each is given what it uses.
    const clusterStore = new ClusterStore({ db });
    const auditLog = new AuditLog({ db });
    const apiKeys = new ApiKeys({ db, auth, events });
    const tenantStore = new TenantStore(db);
    const access = new TenantAccess({ db, clusters, locks: tenantLocks });
    const changes = new TenantChanges({ events: domainEvents, poolApplyWaitMs: config.POOL_APPLY_WAIT_MS });
    const security = new TenantSecurity({ db, config });
    const connectionStrings = new ConnectionStrings({ config, pooler: pooler.driver });
    const handoffs = new CredentialHandoffs({ db, config });
    const lifecycle = new TenantLifecycle({ db, access, locks: tenantLocks, changes, connectionStrings, handoffs });
    const deprovisioning = new TenantDeprovisioning({ db, clusters, locks: tenantLocks, changes, auth, events });
    const connections = new TenantConnections({ db, access });

    const tenantExtensions = new TenantExtensions({ db, catalog, clusters, access, security, locks: tenantLocks, changes, failpoints, logger });
    const quotaStore = new QuotaStore({ db });
    const connectionLimits = new ConnectionLimits({ config });
    const capacity = new CapacityPlanner({ db, config });
    const placement = new ClusterPlacement({ db, config, clusters, capacity, quotas: quotaStore });
    const limitDrift = new LimitDrift({ db, config, logger, locks: tenantLocks, connectionLimits });
    const quotaUpdates = new QuotaUpdates({ db, config, logger, metrics, access, locks: tenantLocks, changes, capacity, connectionLimits });

    const installPoolerLookup = pools.installLookup.bind(pools);
    const templateDatabases = new TemplateDatabases({ catalog, controlDatabase: config.CONTROL_DATABASE, logger, installPoolerLookup });
    const schemaVersions = new SchemaVersionStore({ db });
    const upgrades = new SchemaUpgrades({ db, catalog, access, security, locks: tenantLocks, changes, schemaVersions, tenantExtensions });

    const provisioning = new TenantProvisioning({ db, config, logger, clusters, catalog, templateDatabases, locks: tenantLocks, failpoints, changes, capacity, placement, connectionStrings, handoffs, pools });
    // registerCluster (and a new URL) prepares the server as the default one is: the pooler's roles and lookup, the default template's database.
    const defaultTemplate = catalog.resolve(DEFAULT_TEMPLATE, null);
    const templatePreparer = { name: 'templates', prepare: async (c: Parameters<TemplateDatabases['ensure']>[0]) => void (defaultTemplate && (await templateDatabases.ensure(c, defaultTemplate))) };
    const clusterAdministration = new ClusterAdministration({ db, clusters, secrets: clusterSecrets, locks: tenantLocks, events: domainEvents, logger, limits, preparers: [pools.clusterPreparer, templatePreparer], changeWaitMs: config.POOL_APPLY_WAIT_MS });
    const recovery = new TenantRecovery({ db, logger, clusters, locks: tenantLocks, provisioning, deprovisioning, limitDrift, changes });
    stack.push(() => recovery.stop());

    const moves = new TenantMoves({ db, logger, controlUrl: control.url, clusters, locks: tenantLocks, failpoints, capacity, catalog, changes, events, pooler: pools });
    stack.push(() => moves.stop());
    const evacuation = new ClusterEvacuation({ db, moves, placement });
    const operations = new FleetOperations({ db, logger, controlUrl: control.url, clusters, catalog, locks: tenantLocks, failpoints, events, access, upgrades, tenantExtensions, security, evacuation });
    stack.push(() => operations.stop());
    const inventory = new TenantInventory({ db, logger, clusters, catalog, locks: tenantLocks, events: domainEvents, tenantExtensions, schemaVersions });
    stack.push(() => inventory.stop());
    const readiness = new ReadinessMonitor({ db, config, logger, clusters, clusterStore, catalog, pooler, events, domainEvents, inventory, capacity, tenantExtensions });
    stack.push(() => readiness.stop());
    const refresh = new TenantRefresh({ db, access, inventory });
    const readOnlyCredentials = new ReadOnlyCredentials({ db, access, quotas: quotaStore, connectionStrings });
    // Every registered cluster is sampled (one lease each); a cluster registered, changed or removed later follows.
    await usage.start((await clusters.rows()).map((c) => c.id));
    const unfollowClusters = domainEvents.subscribe('cluster.changed', ({ clusterId, removed }) => usage.followCluster(clusterId, removed));
    stack.push(async () => unfollowClusters());

    // What resolvers may ask for (ctx.services.get(Class)).
    const services = new ServiceRegistry([
      clusters, clusterStore, clusterAdministration, placement, auditLog, apiKeys, auth, tenantStore, lifecycle, deprovisioning, connections,
      connectionStrings, tenantExtensions, offeredExtensions, quotaStore, capacity, quotaUpdates, catalog,
      schemaVersions, upgrades, provisioning, pools, usage, inventory, readiness, refresh, operations,
      liveReads, metrics, failpoints, readOnlyCredentials, moves,
    ]);

    front.phase = 'checking readiness';
    await readiness.start(config.READINESS_INTERVAL_MS);
    const ready = readiness.current();
    if (!ready.ready) logger.error({ reasons: ready.reasons }, 'not ready');
    if (ready.warnings.length) logger.warn({ warnings: ready.warnings.slice(0, 20) }, 'readiness warnings');
    const advice = await capacity.capacityAdvice(defaultCluster);
    if (advice.warning) logger.warn(advice.warning);
    else logger.info(advice.summary);
    front.attach({ config, logger, services }, new LiveSessions({ events, keys: apiKeys, logger, metrics, onStream: (res) => front.streamStarted(res) }));

    // In the background from here: the pooler catching up, the fleet's inventory (progress in
    // /health/ready), interrupted work, fleet operations a stopped server left.
    pools.startReconciler(config.RECONCILE_INTERVAL_MS);
    inventory.start(config.INVENTORY_INTERVAL_MS);
    recovery.start(config.RECOVERY_INTERVAL_MS);
    operations.resumeUnfinished(config.OPERATION_RESUME_INTERVAL_MS);
    moves.start(config.OPERATION_RESUME_INTERVAL_MS);
    void operations.secureLegacyTenants().catch((err) => logger.error({ err }, 'starting the operation that secures legacy tenants failed'));

    const parts: TenantryParts = { db, controlQueries, clusters, locks: tenantLocks, events, metrics, pools, usage, inventory, recovery, liveReads, offeredExtensions, capacity, moves, readiness };
    let closing: Promise<void> | undefined;
    return {
      url: front.url,
      parts,
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
