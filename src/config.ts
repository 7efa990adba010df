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
  // Cross-field rules run even when other variables are invalid (zod skips refinements
  // after a failed field unless told `when`), so one start reports every problem.
  .refine((c) => c.QUOTA_MIN <= c.QUOTA_MAX, {
    error: (i) => `QUOTA_MIN (${cfg(i).QUOTA_MIN}) must not exceed QUOTA_MAX (${cfg(i).QUOTA_MAX})`,
    path: ['QUOTA_MIN'],
    when: fieldsValid('QUOTA_MIN', 'QUOTA_MAX'),
  })
  .refine((c) => c.DEFAULT_MAX_CONNECTIONS >= c.QUOTA_MIN && c.DEFAULT_MAX_CONNECTIONS <= c.QUOTA_MAX, {
    error: (i) => `DEFAULT_MAX_CONNECTIONS (${cfg(i).DEFAULT_MAX_CONNECTIONS}) must lie within QUOTA_MIN..QUOTA_MAX (${cfg(i).QUOTA_MIN}..${cfg(i).QUOTA_MAX})`,
    path: ['DEFAULT_MAX_CONNECTIONS'],
    when: fieldsValid('DEFAULT_MAX_CONNECTIONS', 'QUOTA_MIN', 'QUOTA_MAX'),
  })
  .refine((c) => c.PORT === 0 || c.POOLER === 'none' || c.PORT !== c.POOLER_PORT, {
    error: (i) => `PORT and POOLER_PORT are both ${cfg(i).PORT}: the service and PgBouncer need a port each`,
    path: ['POOLER_PORT'],
    when: fieldsValid('PORT', 'POOLER_PORT', 'POOLER'),
  })
  .refine((c) => c.DATABASE_URL !== undefined || (c.EMBEDDED_PG_PORT !== c.PORT && (c.POOLER === 'none' || c.EMBEDDED_PG_PORT !== c.POOLER_PORT)), {
    error: (i) => `EMBEDDED_PG_PORT (${cfg(i).EMBEDDED_PG_PORT}) must differ from PORT and POOLER_PORT`,
    path: ['EMBEDDED_PG_PORT'],
    when: fieldsValid('DATABASE_URL', 'EMBEDDED_PG_PORT', 'PORT', 'POOLER_PORT', 'POOLER'),
  });

/** The parsed variables a cross-field rule looked at (for its message). */
function cfg(issue: { input?: unknown }): Record<string, unknown> {
  return issue.input as Record<string, unknown>;
}

/** For a cross-field rule: run it when the variables it reads parsed (whatever else failed). */
function fieldsValid(...names: string[]): (payload: { issues: readonly { code?: string; path?: readonly PropertyKey[] }[] }) => boolean {
  // Another rule's finding (code "custom") does not stop this one: only a variable that did not parse.
  return (payload) => !payload.issues.some((issue) => issue.code !== 'custom' && names.includes(String(issue.path?.[0])));
}

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
