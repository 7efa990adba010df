import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { ReadOnlyCredential } from '../../generated/prisma/client.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { UserError } from '../../platform/errors.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { QuotaStore } from '../quotas/index.js';
import { newCredentials, readOnlyRoleName, validateText, type ConnectionStrings, type Tenant, type TenantAccess, type Visible } from '../tenants/index.js';
import * as sql from './read-only.sql.js';

export type { ReadOnlyCredential };

/** The furthest ahead an expiry may be: credentials for a BI tool are renewed, not forever. */
export const MAX_READ_ONLY_LIFETIME_MS = 366 * 24 * 3600 * 1000;

/** PostgreSQL's NAMEDATALEN - 1: longer names are truncated, so two roles could collide. */
const MAX_ROLE_BYTES = 63;

export type ReadOnlyStatus = 'ACTIVE' | 'EXPIRED' | 'REVOKED';

export function readOnlyStatus(c: ReadOnlyCredential, now = new Date()): ReadOnlyStatus {
  if (c.revokedAt) return 'REVOKED';
  return c.expiresAt <= now ? 'EXPIRED' : 'ACTIVE';
}

/**
 * Read-only credentials for a tenant's database (BI tools): a second login role, `<tenant
 * role>.ro.<hex>`, with SELECT on what the tenant owns now and creates later, its own connection
 * limit, and an expiry PostgreSQL enforces (VALID UNTIL). Every grant on the tenant's objects
 * runs as the tenant (SET LOCAL ROLE) in a control-plane session with a fixed search_path, so
 * nothing of the tenant's runs with our rights. Suspending, resuming and deprovisioning the
 * tenant take these roles along (tenants module, by their name).
 */
export class ReadOnlyCredentials {
  constructor(private readonly p: { db: ControlClient; access: TenantAccess; quotas: QuotaStore; connectionStrings: ConnectionStrings }) {}

  /** Not idempotent: every call makes new credentials (each shown once). */
  async createReadOnlyCredentials(
    op: OperationContext,
    input: { slug: string; expiresAt: Date; name?: string | null; maxConnections?: number | null },
    visible: Visible,
  ): Promise<{ credentials: ReadOnlyCredential; connectionString: string }> {
    const { db, access, quotas, connectionStrings } = this.p;
    const name = input.name == null || input.name.trim() === '' ? null : validateText(input.name, 'name', 100);
    const expiresAt = new Date(input.expiresAt);
    const now = Date.now();
    if (!(expiresAt.getTime() > now)) throw new UserError('INVALID_INPUT', 'expiresAt must be in the future', 'expiresAt');
    if (expiresAt.getTime() > now + MAX_READ_ONLY_LIFETIME_MS) throw new UserError('INVALID_INPUT', 'expiresAt must be at most 366 days ahead', 'expiresAt');
    return access.withTenant(input.slug, visible, async (tenant, cluster) => {
      if (tenant.status !== 'ACTIVE') throw new UserError('INVALID_STATE', `tenant ${tenant.slug} is ${tenant.status}; read-only credentials need it ACTIVE`, 'slug');
      const [quota] = await quotas.byTenantIds([tenant.id]);
      const max = quota?.maxConnections ?? 1;
      const limit = input.maxConnections ?? Math.max(1, Math.floor(max / 10));
      if (!Number.isInteger(limit) || limit < 1 || limit > max) {
        throw new UserError('INVALID_INPUT', `maxConnections must be 1 to the tenant's quota (${max})`, 'maxConnections');
      }
      const roleName = readOnlyRoleName(tenant.roleName, randomBytes(4).toString('hex'));
      if (Buffer.byteLength(roleName) > MAX_ROLE_BYTES) {
        throw new UserError('INVALID_STATE', `the tenant's role name is too long to derive a read-only role from (${roleName} is over ${MAX_ROLE_BYTES} bytes)`, 'slug');
      }
      const { password, verifier } = await newCredentials();
      await cluster.query(sql.createReadOnlyRole(roleName, verifier, expiresAt, limit));
      try {
        await cluster.query(sql.grantConnect(tenant.databaseName, roleName));
        await cluster.withDatabase(tenant.databaseName, async (client) => {
          await client.query(sql.grantSchemaUsage(roleName));
          await asTenant(client, tenant, async () => {
            // Default privileges first: a table created meanwhile gets SELECT one way or the other.
            await client.query(sql.grantFutureSelect(tenant.roleName, roleName));
            const { rows } = await client.query<{ schema: string; name: string; sequence: boolean }>(sql.tenantRelations, [tenant.roleName, null]);
            for (const statement of sql.grantSelectOn(rows, roleName)) await client.query(statement);
          });
        });
        const credentials = await db.$transaction(async (tx) => {
          const row = await tx.readOnlyCredential.create({
            data: { id: randomUUID(), tenantId: tenant.id, name, roleName, maxConnections: limit, createdBy: op.actor, expiresAt },
          });
          await recordAuditEvent(tx, op, {
            category: 'security',
            action: 'tenant.read_only_credentials.created',
            tenant,
            subject: roleName,
            metadata: { id: row.id, name, maxConnections: limit, expiresAt: expiresAt.toISOString() },
          });
          return row;
        });
        const direct = connectionStrings.tenantConnectionStrings(cluster, { roleName, databaseName: tenant.databaseName }, password).direct;
        return { credentials, connectionString: direct };
      } catch (err) {
        // Nothing half-made stays behind: the role goes, with whatever it was granted.
        await removeRole(cluster, tenant, roleName).catch(() => undefined);
        throw err;
      }
    });
  }

  /**
   * Ends the role's sessions, takes back its privileges and drops it, then records revokedAt.
   * Revoking again answers the same record.
   */
  async revokeReadOnlyCredentials(op: OperationContext, id: string | null, visible: Visible): Promise<ReadOnlyCredential> {
    const { db, access } = this.p;
    const found = id ? await db.readOnlyCredential.findUnique({ where: { id }, include: { tenant: true } }) : null;
    if (!found || !visible(found.tenant)) throw new UserError('NOT_FOUND', 'no such read-only credentials', 'id');
    return access.withTenant(found.tenant.slug, visible, async (tenant, cluster) => {
      const current = await db.readOnlyCredential.findUniqueOrThrow({ where: { id: found.id } });
      if (current.revokedAt) return current;
      const terminatedSessions = await removeRole(cluster, tenant, current.roleName);
      return db.$transaction(async (tx) => {
        await recordAuditEvent(tx, op, {
          category: 'security',
          action: 'tenant.read_only_credentials.revoked',
          tenant,
          subject: current.roleName,
          metadata: { id: current.id, terminatedSessions },
        });
        return tx.readOnlyCredential.update({ where: { id: current.id }, data: { revokedAt: new Date() } });
      });
    });
  }

  /** Every tenant's credentials, oldest first (one query for a page of tenants). */
  async byTenantIds(tenantIds: readonly string[]): Promise<ReadOnlyCredential[][]> {
    const rows = await this.p.db.readOnlyCredential.findMany({ where: { tenantId: { in: [...tenantIds] } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    return tenantIds.map((id) => rows.filter((r) => r.tenantId === id));
  }

  async byIds(ids: readonly string[]): Promise<(ReadOnlyCredential & { tenant: Tenant })[]> {
    return this.p.db.readOnlyCredential.findMany({ where: { id: { in: [...ids] } }, include: { tenant: true } });
  }
}

/** Runs `fn` in a transaction as the tenant's role; the session's search_path stays pg_catalog, pg_temp. */
async function asTenant(client: pg.Client, tenant: Tenant, fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(sql.actAs(tenant.roleName));
    await fn();
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * No more logins, no more sessions, no privileges left (it owns nothing), then no role.
 * Idempotent. Returns how many sessions were ended.
 */
async function removeRole(cluster: ClusterAdmin, tenant: Tenant, roleName: string): Promise<number> {
  if (!(await cluster.query(sql.roleExists, [roleName])).rowCount) return 0;
  await cluster.query(sql.disableLogin(roleName));
  const { rows } = await cluster.query<{ terminated: number }>(sql.terminateSessionsOf, [roleName]);
  if ((await cluster.query(sql.databaseExists, [tenant.databaseName])).rowCount) {
    await cluster.withDatabase(tenant.databaseName, async (client) => {
      await asTenant(client, tenant, async () => {
        await client.query(sql.revokeFutureSelect(tenant.roleName, roleName));
        const granted = await client.query<{ schema: string; name: string; sequence: boolean }>(sql.tenantRelations, [tenant.roleName, roleName]);
        for (const statement of sql.revokeAllOn(granted.rows, roleName)) await client.query(statement);
      });
      await client.query(sql.revokeSchemaUsage(roleName));
    });
    await cluster.query(sql.revokeDatabase(tenant.databaseName, roleName));
  }
  await cluster.query(sql.dropRole(roleName));
  return rows[0]?.terminated ?? 0;
}
