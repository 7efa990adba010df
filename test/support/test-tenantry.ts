import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import format from 'pg-format';
import { loadConfig } from '../../src/platform/config.js';
import { Failpoints, type FailpointAction } from '../../src/platform/failpoints.js';
import { generateApiKey } from '../../src/modules/keys/api-keys.js';
import { createLogger } from '../../src/platform/logger.js';
import { startTenantry, type Tenantry } from '../../src/server.js';

export function testServerUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the suite with `npm test`');
  return url;
}

/**
 * The URL the service under test logs in with: the superuser's, or with TEST_LEAST_PRIVILEGE=1
 * a role that is not superuser (scripts/run-tests.ts sets it up). Tests inspect the server
 * through testServerUrl() (the superuser) either way.
 */
export function controlPlaneUrl(): string {
  return process.env.TEST_CONTROL_PLANE_URL ?? testServerUrl();
}

export interface GraphQLResponse<T = any> {
  status: number;
  headers: Headers;
  data: T;
  errors?: { message: string; path?: string[]; extensions?: { code?: string; correlationId?: string } }[];
}

export interface TestTenantry {
  app: Tenantry;
  url: string;
  adminKey: string;
  controlDatabase: string;
  prefix: string;
  /** Every log line the service wrote. */
  logs: string[];
  /** Superuser pool on the test server's maintenance database. */
  admin: pg.Pool;
  gql<T = any>(query: string, variables?: Record<string, unknown>, key?: string | null): Promise<GraphQLResponse<T>>;
  /** Stops this instance (not the cleanup). */
  stop(): Promise<void>;
  /** Stops it and drops every database and role it created. */
  cleanup(): Promise<void>;
}

/**
 * A Tenantry of its own for one test file: its own control database and tenant
 * prefix on the test server, so files run in parallel and leave nothing behind.
 * Pass `shareWith` to start a second instance on the same control database.
 */
export async function startTestTenantry(
  options: {
    env?: Record<string, string>;
    /** What happens at named points of the service (src/platform/failpoints.ts lists them): `{ 'provision.before:DATABASE': () => { throw … } }`. */
    failpoints?: Record<string, FailpointAction>;
    shareWith?: TestTenantry; /** A server of the test's own (superuser URL) instead of the test server. */ serverUrl?: string } = {},
): Promise<TestTenantry> {
  const serviceUrl = options.serverUrl ?? controlPlaneUrl();
  const inspectUrl = options.serverUrl ?? testServerUrl();
  const id = randomBytes(4).toString('hex');
  const controlDatabase = options.shareWith?.controlDatabase ?? `tenantry_t${id}`;
  const prefix = options.shareWith?.prefix ?? `t${id}_`;
  const adminKey = options.shareWith?.adminKey ?? generateApiKey();
  // TEST_INSTANCES_LOG (.ci/run sets it): which file made which control database, so that
  // anything left behind can be traced to its file.
  if (process.env.TEST_INSTANCES_LOG && !options.shareWith) {
    appendFileSync(process.env.TEST_INSTANCES_LOG, `${controlDatabase} ${prefix} ${path.relative(process.cwd(), process.argv[1] ?? '?')}\n`);
  }
  const config = loadConfig({
    DATABASE_URL: serviceUrl,
    CONTROL_DATABASE: controlDatabase,
    TENANT_DB_PREFIX: prefix,
    ADMIN_API_KEY: adminKey,
    PORT: '0',
    QUOTA_MIN: '2',
    LOG_LEVEL: 'debug',
    // Files share one server and each thinks it owns it: over-commit unless a test sets otherwise.
    OVERCOMMIT_FACTOR: '50',
    POOLER: 'none',
    RECONCILE_INTERVAL_MS: '0',
    READINESS_INTERVAL_MS: '600000',
    // Every file's requests come from 127.0.0.1 and some fail on purpose: rate limiting is tested on its own.
    AUTH_FAILURE_LIMIT: '100000',
    ...options.env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      if (process.env.TEST_LOGS) process.stderr.write(chunk);
      done();
    },
  });
  const admin = new pg.Pool({ connectionString: inspectUrl, max: 3 });
  admin.on('error', () => undefined);
  let app: Tenantry;
  try {
    app = await startTenantry({ config, serverUrl: serviceUrl, logger: createLogger('debug', sink), failpoints: failpointsOf(options.failpoints) });
  } catch (err) {
    // It stopped what it had started; what it made on the server is this helper's to drop (a second instance's belongs to the first).
    if (!options.shareWith) await dropEverythingOf(admin, { controlDatabase, prefix }).catch(() => undefined);
    await admin.end();
    throw err;
  }

  const gql = async (query: string, variables?: Record<string, unknown>, key: string | null = adminKey) => {
    const res = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data: any; errors?: GraphQLResponse['errors'] };
    return { status: res.status, headers: res.headers, data: body.data, errors: body.errors };
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.close();
  };
  return {
    app,
    url: app.url,
    adminKey,
    controlDatabase,
    prefix,
    logs,
    admin,
    gql,
    stop,
    async cleanup() {
      await stop();
      await dropEverythingOf(admin, { controlDatabase, prefix });
      await admin.end();
    },
  };
}

/** A Failpoints with these actions set (none: inert). */
export function failpointsOf(actions: Record<string, FailpointAction> = {}): Failpoints {
  const failpoints = new Failpoints();
  for (const [name, action] of Object.entries(actions)) failpoints.set(name, action);
  return failpoints;
}

/** Drops the control database, template databases and every tenant database and role of one test instance. */
export async function dropEverythingOf(admin: pg.Pool, p: { controlDatabase: string; prefix: string }): Promise<void> {
  const { rows } = await admin.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE starts_with(datname, $1) OR starts_with(datname, $2)`,
    [p.prefix, p.controlDatabase],
  );
  for (const { datname } of rows) {
    await admin.query(format('ALTER DATABASE %I WITH IS_TEMPLATE false', datname));
    await admin.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname));
  }
  // Tenant roles, and the pooler's auth user (<control database>_pooler) when PgBouncer ran.
  const roles = await admin.query<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) OR rolname = $2`, [p.prefix, `${p.controlDatabase}_pooler`]);
  for (const { rolname } of roles.rows) await admin.query(format('DROP ROLE IF EXISTS %I', rolname));
}

/** A superuser-free client as the tenant: opened with the connection string provisioning returned. */
export async function connectAs(connectionString: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

export const PROVISION = `mutation Provision($input: ProvisionTenantInput!) {
  provisionTenant(input: $input) {
    tenant { id slug status databaseName roleName provisioning { lastCompletedStep failedStep error } quota { maxConnections } }
    connectionString
    pooledConnectionString
    userErrors { code field message }
  }
}`;

export const DEPROVISION = `mutation Deprovision($input: DeprovisionTenantInput!) {
  deprovisionTenant(input: $input) { tenant { slug status } userErrors { code field message } }
}`;

/** Session limits for test code that opens control-plane connections itself. */
export const TEST_LIMITS = { statementTimeoutMs: 120_000, lockTimeoutMs: 10_000, connectTimeoutMs: 10_000 };

/**
 * Waits until the service's background work has settled: the inventory (its start pass and
 * the single checks that follow changes), recovery, the pooler's apply queue, and then no
 * control-database statement for a moment. Tests that count statements measure after it.
 */
export async function settle(t: { app: Tenantry }, quietMs = 200, timeoutMs = 60_000): Promise<void> {
  const { parts } = t.app;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await parts.inventory.idle();
    await parts.recovery.idle();
    await parts.pools.idle();
    const before = parts.controlQueries.queries;
    await new Promise((r) => setTimeout(r, quietMs));
    if (parts.controlQueries.queries === before) return;
    if (Date.now() > deadline) throw new Error('the service did not settle');
  }
}

/**
 * The fewest control-database statements `work` cost in `tries` runs, with its last result. The
 * counter is the service's: the sampler, readiness or a lease renewal can add to one run on a
 * busy machine, never take away, so the least is what the work itself costs.
 */
export async function fewestStatements<T>(t: { app: Tenantry }, work: () => Promise<T>, tries = 3): Promise<{ statements: number; result: T }> {
  let best: { statements: number; result: T } | undefined;
  for (let i = 0; i < tries; i++) {
    const before = t.app.parts.controlQueries.queries;
    const result = await work();
    const statements = t.app.parts.controlQueries.queries - before;
    if (!best || statements < best.statements) best = { statements, result };
  }
  return best!;
}

/** Waits until a tenant's pool has `status` (the pooler follows changes in the background). */
export async function poolStatus(t: { app: Tenantry }, slug: string, status = 'IN_SYNC', timeoutMs = 20_000): Promise<{ status: string; poolSize: number; maxConnections: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tenant = await t.app.parts.db.tenant.findUnique({ where: { slug }, include: { pool: true } });
    if (tenant?.pool?.status === status) return tenant.pool;
    if (Date.now() > deadline) throw new Error(`pool of ${slug} is ${tenant?.pool?.status ?? 'missing'}, not ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
