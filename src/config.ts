import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
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
    /** Per-minute usage history is kept this long. */
    USAGE_RETENTION_DAYS: positiveInt.default(8),
    MAX_SUBSCRIPTIONS_PER_SOCKET: positiveInt.default(20),
    /** How often a server looks for fleet operations nobody is running (a stopped server's) to resume. */
    OPERATION_RESUME_INTERVAL_MS: positiveInt.default(10_000),
    /** How often every tenant database is inventoried for drift (0: at start only). */
    INVENTORY_INTERVAL_MS: z.coerce.number().int().min(0).default(300_000),
    /** Unset: pgbouncer when the binary is found, else none. */
    POOLER: z.enum(['pgbouncer', 'pgcat', 'none']).optional(),
    /** Address and port of the pooler tenants connect to (and, for pgbouncer, where Tenantry starts it). */
    POOLER_HOST: z.string().default('127.0.0.1'),
    POOLER_PORT: port.default(6432),
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
    /** How far the quotas on a cluster may add up beyond what it can serve (1.0: not at all). */
    OVERCOMMIT_FACTOR: z.coerce.number().positive().default(1.0),
    REDIS_URL: z.string().optional(),
    /** Prefix of the Redis channels; default tenantry:<CONTROL_DATABASE>, so control planes sharing a Redis stay apart. */
    REDIS_CHANNEL_PREFIX: z.string().optional(),
    /** Host written into tenants' connection strings; defaults to the cluster's own host. */
    TENANT_HOST: z.string().optional(),
    /** Where the embedded PostgreSQL keeps its data between runs. */
    TENANTRY_HOME: z.string().default('.tenantry'),
    EMBEDDED_PG_PORT: port.default(54329),
    /** Folder holding the tenant schema templates. */
    TEMPLATES_DIR: z.string().default('templates'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    NODE_ENV: z.string().default('development'),
  })
  .refine((c) => c.QUOTA_MIN <= c.QUOTA_MAX, { message: 'QUOTA_MIN must not exceed QUOTA_MAX', path: ['QUOTA_MIN'] })
  .refine((c) => c.DEFAULT_MAX_CONNECTIONS >= c.QUOTA_MIN && c.DEFAULT_MAX_CONNECTIONS <= c.QUOTA_MAX, {
    message: 'DEFAULT_MAX_CONNECTIONS must lie within QUOTA_MIN..QUOTA_MAX',
    path: ['DEFAULT_MAX_CONNECTIONS'],
  })
  // A tenant's role is <TENANT_DB_PREFIX><slug>: the pooler's roles must never be one a tenant could be given.
  .refine((c) => !(c.POOLER_AUTH_USER ?? `${c.CONTROL_DATABASE}_pooler`).startsWith(c.TENANT_DB_PREFIX), {
    message: 'POOLER_AUTH_USER (default <CONTROL_DATABASE>_pooler) must not start with TENANT_DB_PREFIX',
    path: ['POOLER_AUTH_USER'],
  })
  .refine((c) => !c.POOLER_LOOKUP_ROLE.startsWith(c.TENANT_DB_PREFIX), {
    message: 'POOLER_LOOKUP_ROLE must not start with TENANT_DB_PREFIX',
    path: ['POOLER_LOOKUP_ROLE'],
  });

export type Config = z.infer<typeof schema>;

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
