import { z } from 'zod';
import { parseProxyTrust } from './http/client-address.js';
import { ANY_ORIGIN, parseAllowedOrigins, SAME_ORIGIN_ONLY } from './http/origin-policy.js';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
/** "true"/"false" (also 1/0, yes/no, on/off); unset means the mode's default. */
const flag = z.stringbool().optional();
/** A setting read by a parser of its own (which throws a sentence saying what is wrong). */
function parsedWith<T>(parse: (value: string) => T) {
  return z.string().transform((value, ctx): T => {
    try {
      return parse(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });
}
/** Names that become part of PostgreSQL identifiers: kept to a safe, unquoted-looking set. */
const identifierPart = z.string().regex(/^[a-z_][a-z0-9_]*$/, 'lowercase letters, digits and _, not starting with a digit');

const schema = z
  .object({
    PORT: port.default(4000),
    HOST: z.string().default('127.0.0.1'),
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
    CONTROL_DATABASE: identifierPart.max(40).default('tenantry'),
    ADMIN_API_KEY: z.string().min(20, 'ADMIN_API_KEY must be at least 20 characters').optional(),
    // Slugs are up to 40 characters; PostgreSQL identifiers up to 63.
    TENANT_DB_PREFIX: identifierPart.max(23).default('tenant_'),
    DEFAULT_MAX_CONNECTIONS: positiveInt.default(50),
    QUOTA_MIN: positiveInt.default(10),
    QUOTA_MAX: positiveInt.default(500),
    /** Connections a tenant database allows beyond its role's quota, for the control plane's maintenance work. */
    CONNECTION_RESERVE: z.coerce.number().int().min(0).default(3),
    USAGE_SAMPLE_MS: positiveInt.default(1000),
    /** Sampling interval while nobody subscribes (history still needs samples). */
    USAGE_IDLE_SAMPLE_MS: positiveInt.default(15_000),
    /** Subscribers hear from an unchanged tenant at least this often. */
    USAGE_HEARTBEAT_MS: positiveInt.default(15_000),
    /** A sampling leader silent this long loses its lease; another replica takes over. Default: 5 s, or 3 sample intervals if longer. */
    USAGE_LEASE_MS: positiveInt.optional(),
    /** Samples a subscriber may fall behind before it is dropped (SUBSCRIBER_TOO_SLOW). */
    USAGE_SUBSCRIBER_QUEUE: positiveInt.default(16),
    /** Bytes a graphql-ws socket may hold unsent before it is closed (1013). */
    WS_MAX_BUFFERED_BYTES: positiveInt.default(4 * 1024 * 1024),
    /** Per-minute usage history is kept this long. */
    USAGE_RETENTION_DAYS: positiveInt.default(8),
    MAX_SUBSCRIPTIONS_PER_SOCKET: positiveInt.default(20),
    /** How often a server looks for fleet operations nobody is running (a stopped server's) to resume. */
    OPERATION_RESUME_INTERVAL_MS: positiveInt.default(10_000),
    /** How often every tenant database is inventoried for drift (0: at start only). */
    INVENTORY_INTERVAL_MS: z.coerce.number().int().min(0).default(300_000),
    /** Unset: pgbouncer when the binary is found, else none. */
    POOLER: z.enum(['pgbouncer', 'none'], { error: 'pgbouncer or none (PgCat is not supported: it needs every tenant\'s plaintext password, and its admin API cannot be exercised here)' }).optional(),
    /** Address and port of the pooler tenants connect to (and, for pgbouncer, where Tenantry starts it). */
    POOLER_HOST: z.string().default('127.0.0.1'),
    POOLER_PORT: port.default(6432),
    /**
     * PgBouncer processes, each with a share of the tenants' pools, listening on POOLER_PORT,
     * POOLER_PORT+1, ...: a pool change reloads one of them. A tenant's PgBouncer follows from
     * its database name, so fix this before handing out pooled connection strings.
     */
    POOLER_SHARDS: z.coerce.number().int().min(1).max(64).default(1),
    /** Folder of the PgBouncer Tenantry runs (its ini, auth file, log); default <TENANTRY_HOME>/pgbouncer. */
    POOLER_DIR: z.string().optional(),
    POOL_MODE: z.enum(['session', 'transaction']).default('transaction'),
    /** NOLOGIN role that owns the pooler's lookup function and reads pg_authid through pg_read_all_data (one per server). */
    POOLER_LOOKUP_ROLE: identifierPart.max(63).default('tenantry_pooler_lookup'),
    /** Login role PgBouncer runs its auth_query as; default <CONTROL_DATABASE>_pooler. */
    POOLER_AUTH_USER: identifierPart.max(63).optional(),
    /** Seconds a pooled server connection may sit idle before PgBouncer closes it (and gives the slot back to the tenant's quota). */
    POOLER_SERVER_IDLE_TIMEOUT: z.coerce.number().int().min(1).max(86_400).default(10),
    /** Client slots PgBouncer reserves per connection of quota: max_client_conn = max(100, sum of quotas x this). */
    POOLER_CLIENTS_PER_CONNECTION: positiveInt.max(1000).default(5),
    /** A fixed max_client_conn instead of the formula (still capped by the file-descriptor limit). */
    POOLER_MAX_CLIENT_CONN: positiveInt.optional(),
    /** How often the reconciler compares tenants with the pooler (0: only at start and on demand). */
    RECONCILE_INTERVAL_MS: z.coerce.number().int().min(0).default(30_000),
    /** Longest any statement of the control plane may run, on any server (a hung statement fails instead of hanging). */
    STATEMENT_TIMEOUT_MS: positiveInt.default(120_000),
    /** Longest the control plane waits for a lock: a tenant another request is changing answers TENANT_BUSY after this. */
    LOCK_TIMEOUT_MS: positiveInt.default(5_000),
    /** Longest a request waits for a free connection of one of the control plane's pools (then TIMEOUT). */
    POOL_ACQUIRE_TIMEOUT_MS: positiveInt.default(10_000),
    /** How long a mutation waits for the pooler to take its change before answering with the pool PENDING (it is applied anyway). */
    POOL_APPLY_WAIT_MS: z.coerce.number().int().min(0).default(5_000),
    /** On SIGTERM/SIGINT: how long requests and mutations under way may take to finish before subscriptions, then pools, are closed. */
    SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(25_000),
    /** How often readiness re-checks the control database, the clusters and the pooler (probes read the last result). */
    READINESS_INTERVAL_MS: positiveInt.default(10_000),
    /** How long new credentials stay retrievable with the idempotency key that created them. */
    CREDENTIAL_HANDOFF_TTL_MS: positiveInt.default(15 * 60_000),
    /** How often interrupted work (provisioning, deprovisioning, rotations) is resumed and PostgreSQL's limits are compared with the records. */
    RECOVERY_INTERVAL_MS: z.coerce.number().int().min(0).default(30_000),
    /** CREATE DATABASE strategy for tenant databases (PostgreSQL 15+): unset for the server's default (wal_log). */
    DATABASE_COPY_STRATEGY: z.enum(['wal_log', 'file_copy']).optional(),
    /** How far the quotas on a cluster may add up beyond what it can serve (1.0: not at all). */
    OVERCOMMIT_FACTOR: z.coerce.number().positive().default(1.0),
    REDIS_URL: z.string().optional(),
    /** Prefix of the Redis channels; default tenantry:<CONTROL_DATABASE>, so control planes sharing a Redis stay apart. */
    REDIS_CHANNEL_PREFIX: z.string().optional(),
    /** Host written into tenants' connection strings; defaults to the cluster's own host. */
    TENANT_HOST: z.string().optional(),
    /**
     * Key that encrypts the admin URLs of clusters registered with `connectionUrl` (32 bytes,
     * as 64 hex characters or base64); default: a key file made once in TENANTRY_HOME. Replicas
     * sharing a control database need the same key. Not needed with `connectionUrlEnv`.
     */
    CLUSTER_SECRET_KEY: z.string().optional(),
    /** Placement of a new tenant without an explicit one: spread (the emptiest cluster) or pack (the fullest with room). */
    PLACEMENT_POLICY: z.enum(['spread', 'pack']).default('spread'),
    /** Where the embedded PostgreSQL keeps its data between runs. */
    TENANTRY_HOME: z.string().default('.tenantry'),
    EMBEDDED_PG_PORT: port.default(54329),
    /** Folder holding the tenant schema templates. */
    TEMPLATES_DIR: z.string().default('templates'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    NODE_ENV: z.string().default('development'),

    // What one request may ask for (refused before it runs; see docs/api.md, "Limits").
    /** Deepest selection nesting a query may have. */
    GRAPHQL_MAX_DEPTH: positiveInt.default(8),
    /** Field selections in one query, counted over the whole document. */
    GRAPHQL_MAX_BREADTH: positiveInt.default(300),
    /** Estimated cost of one query: 1 per recorded field, GRAPHQL_LIVE_FIELD_COST per live read, times page sizes. */
    GRAPHQL_MAX_COST: positiveInt.default(10_000),
    /** What one live field (extensions(live: true), connections) costs. */
    GRAPHQL_LIVE_FIELD_COST: positiveInt.default(100),
    GRAPHQL_MAX_ALIASES: positiveInt.default(30),
    GRAPHQL_MAX_DIRECTIVES: positiveInt.default(50),
    /** Lexical tokens in one document (checked while parsing). */
    GRAPHQL_MAX_TOKENS: positiveInt.default(5_000),
    /** Largest first/last of any connection or list; more is refused, not cut. */
    GRAPHQL_MAX_PAGE_SIZE: positiveInt.default(100),
    /** Live per-tenant reads (extensions(live: true), connections) running at once, per cluster. */
    LIVE_READ_CONCURRENCY: positiveInt.default(2),
    /** Live reads waiting for a slot, per cluster and per requester (a tenant, or an admin key); past it that requester gets SERVER_BUSY. */
    LIVE_READ_QUEUE: z.coerce.number().int().min(0).default(20),

    /** How long what a cluster offers (pg_available_extension_versions) is kept before it is read again. */
    CATALOG_CACHE_MS: z.coerce.number().int().min(0).default(60_000),

    /** How long an authenticated key is remembered by this process (0: every request reads the control database). */
    API_KEY_CACHE_MS: z.coerce.number().int().min(0).default(10_000),
    /** Failed authentications one source address may make per AUTH_FAILURE_WINDOW_MS before it is refused (RATE_LIMITED). */
    AUTH_FAILURE_LIMIT: positiveInt.default(10),
    AUTH_FAILURE_WINDOW_MS: positiveInt.default(60_000),
    /**
     * Which proxies in front may say where a request comes from: false, true (one hop), a hop
     * count, or addresses/CIDR ranges. The client is the right-most X-Forwarded-For entry no
     * trusted proxy wrote (see src/http/client-address.ts).
     */
    TRUST_PROXY: parsedWith(parseProxyTrust).default(parseProxyTrust('false')),
    /** Browser origins that may call the API (CORS, and the Origin of a WebSocket upgrade): `*` or a comma-separated list; the service's own origin always may. Default: any in development, none other in production. */
    CORS_ORIGINS: parsedWith(parseAllowedOrigins).optional(),
    /** Largest request body (HTTP) and WebSocket message accepted; larger: 413 REQUEST_ENTITY_TOO_LARGE, or close 1009. */
    MAX_REQUEST_BYTES: positiveInt.default(1024 * 1024),

    /** Serve /metrics and /health/ready on this port instead of PORT (unset: on PORT). */
    INTERNAL_PORT: port.optional(),
    INTERNAL_HOST: z.string().default('127.0.0.1'),
    /** `admin`: /metrics and /health/ready need an ADMIN key (Authorization: Bearer …); `none`: open. Default: admin in production unless INTERNAL_PORT is set. */
    INTERNAL_ENDPOINTS_AUTH: z.enum(['none', 'admin']).optional(),

    /** Defaults follow NODE_ENV: on in development, off in production. */
    GRAPHIQL: flag,
    /** The web dashboard at /dashboard/ (docs/dashboard.md). */
    DASHBOARD: flag,
    /** Where the built dashboard is (default: the package's dashboard/dist, written by `npm run build:dashboard`). */
    DASHBOARD_DIR: z.string().min(1).optional(),
    GRAPHQL_INTROSPECTION: flag,
    /** "Did you mean …" in validation errors. */
    GRAPHQL_FIELD_SUGGESTIONS: flag,
    /** Default follows NODE_ENV: off in development, on in production. */
    CSRF_PREVENTION: flag,
  })
  // Cross-field rules run even when other variables are invalid (zod skips refinements
  // after a failed field unless told `when`), so one start reports every problem.
  .refine((c) => c.QUOTA_MIN <= c.QUOTA_MAX, {
    error: (i) => `QUOTA_MIN (${cfg(i).QUOTA_MIN}) must not exceed QUOTA_MAX (${cfg(i).QUOTA_MAX})`,
    ...checkedOn('QUOTA_MIN', 'QUOTA_MAX'),
  })
  .refine((c) => c.DEFAULT_MAX_CONNECTIONS >= c.QUOTA_MIN && c.DEFAULT_MAX_CONNECTIONS <= c.QUOTA_MAX, {
    error: (i) => `DEFAULT_MAX_CONNECTIONS (${cfg(i).DEFAULT_MAX_CONNECTIONS}) must lie within QUOTA_MIN..QUOTA_MAX (${cfg(i).QUOTA_MIN}..${cfg(i).QUOTA_MAX})`,
    ...checkedOn('DEFAULT_MAX_CONNECTIONS', 'QUOTA_MIN', 'QUOTA_MAX'),
  })
  .refine((c) => c.USAGE_LEASE_MS === undefined || c.USAGE_LEASE_MS >= 2 * c.USAGE_SAMPLE_MS, {
    error: (i) => `USAGE_LEASE_MS (${cfg(i).USAGE_LEASE_MS}) must be at least twice USAGE_SAMPLE_MS (${cfg(i).USAGE_SAMPLE_MS}): the leader renews its lease every sample interval`,
    ...checkedOn('USAGE_LEASE_MS', 'USAGE_SAMPLE_MS'),
  })
  .refine((c) => c.POOLER === 'none' || c.POOLER_PORT + c.POOLER_SHARDS - 1 <= 65_535, {
    error: (i) => `POOLER_SHARDS (${cfg(i).POOLER_SHARDS}) PgBouncers from POOLER_PORT ${cfg(i).POOLER_PORT} run past port 65535`,
    ...checkedOn('POOLER_SHARDS', 'POOLER_PORT', 'POOLER'),
  })
  .refine((c) => c.PORT === 0 || c.POOLER === 'none' || !poolerPorts(c).includes(c.PORT), {
    error: (i) =>
      Number(cfg(i).POOLER_SHARDS ?? 1) > 1
        ? `PORT ${cfg(i).PORT} is one of the PgBouncers' ports (${poolerPortRange(cfg(i))}): the service and PgBouncer need a port each`
        : `PORT and POOLER_PORT are both ${cfg(i).PORT}: the service and PgBouncer need a port each`,
    ...checkedOn('POOLER_PORT', 'POOLER_SHARDS', 'PORT', 'POOLER'),
  })
  .refine((c) => c.DATABASE_URL !== undefined || (c.EMBEDDED_PG_PORT !== c.PORT && (c.POOLER === 'none' || !poolerPorts(c).includes(c.EMBEDDED_PG_PORT))), {
    error: (i) =>
      `EMBEDDED_PG_PORT (${cfg(i).EMBEDDED_PG_PORT}) must differ from PORT and ${Number(cfg(i).POOLER_SHARDS ?? 1) > 1 ? `the PgBouncers' ports (${poolerPortRange(cfg(i))})` : 'POOLER_PORT'}`,
    ...checkedOn('EMBEDDED_PG_PORT', 'DATABASE_URL', 'PORT', 'POOLER_PORT', 'POOLER_SHARDS', 'POOLER'),
  })
  // A tenant's role is <TENANT_DB_PREFIX><slug>: the pooler's roles must never be one a tenant could be given.
  .refine((c) => !(c.POOLER_AUTH_USER ?? `${c.CONTROL_DATABASE}_pooler`).startsWith(c.TENANT_DB_PREFIX), {
    error: 'POOLER_AUTH_USER (default <CONTROL_DATABASE>_pooler) must not start with TENANT_DB_PREFIX',
    ...checkedOn('POOLER_AUTH_USER', 'CONTROL_DATABASE', 'TENANT_DB_PREFIX'),
  })
  .refine((c) => !c.POOLER_LOOKUP_ROLE.startsWith(c.TENANT_DB_PREFIX), {
    error: 'POOLER_LOOKUP_ROLE must not start with TENANT_DB_PREFIX',
    ...checkedOn('POOLER_LOOKUP_ROLE', 'TENANT_DB_PREFIX'),
  })
  .refine((c) => !c.INTERNAL_PORT || c.INTERNAL_PORT !== c.PORT, {
    error: 'INTERNAL_PORT must differ from PORT (leave it unset to serve /metrics and /health/ready on PORT)',
    ...checkedOn('INTERNAL_PORT', 'PORT'),
  })
  .transform((c) => {
    const production = c.NODE_ENV === 'production';
    return {
      ...c,
      USAGE_LEASE_MS: c.USAGE_LEASE_MS ?? Math.max(5000, 3 * c.USAGE_SAMPLE_MS),
      GRAPHIQL: c.GRAPHIQL ?? !production,
      DASHBOARD: c.DASHBOARD ?? !production,
      GRAPHQL_INTROSPECTION: c.GRAPHQL_INTROSPECTION ?? !production,
      GRAPHQL_FIELD_SUGGESTIONS: c.GRAPHQL_FIELD_SUGGESTIONS ?? !production,
      CSRF_PREVENTION: c.CSRF_PREVENTION ?? production,
      CORS_ORIGINS: c.CORS_ORIGINS ?? (production ? SAME_ORIGIN_ONLY : ANY_ORIGIN),
      // A separate internal port is how probes stay keyless; on the public port they need a key.
      INTERNAL_ENDPOINTS_AUTH: c.INTERNAL_ENDPOINTS_AUTH ?? (production && c.INTERNAL_PORT === undefined ? 'admin' : 'none'),
    };
  });

/** The parsed variables a cross-field rule looked at (for its message). */
function cfg(issue: { input?: unknown }): Record<string, unknown> {
  return issue.input as Record<string, unknown>;
}

/** For a cross-field rule reading `names`: reported on the first; run when they all parsed (whatever else failed). */
function checkedOn(...names: string[]) {
  return {
    path: names.slice(0, 1),
    // Another rule's finding (code "custom") does not stop this one: only a variable that did not parse.
    when: (payload: { issues: readonly { code?: string; path?: readonly PropertyKey[] }[] }) =>
      !payload.issues.some((issue) => issue.code !== 'custom' && names.includes(String(issue.path?.[0]))),
  };
}

export type Config = z.output<typeof schema>;

export class ConfigError extends Error {}

/** Reads the environment once; every problem is reported together, by variable name. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** The ports the pooler's PgBouncers listen on: POOLER_PORT and the POOLER_SHARDS-1 after it. */
export function poolerPorts(c: { POOLER_PORT: number; POOLER_SHARDS: number }): number[] {
  return Array.from({ length: c.POOLER_SHARDS }, (_, i) => c.POOLER_PORT + i);
}

/** "6432-6435" for a rule's message (from the parsed input: POOLER_PORT and POOLER_SHARDS as given, or their defaults). */
function poolerPortRange(input: Record<string, unknown>): string {
  const first = Number(input.POOLER_PORT ?? 6432);
  return `${first}-${first + Number(input.POOLER_SHARDS ?? 1) - 1}`;
}
