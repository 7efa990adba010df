import { buildConnectionString } from '../../db/connection-url.js';
import type { Tenant } from '../../generated/prisma/client.js';
import { terminateBackendsOf } from '../../sql/backends.sql.js';
import { disableLogin, enableLogin, setRolePassword } from '../../sql/roles.sql.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../deps.js';
import { UserError } from '../errors.js';
import { generatePassword, scramSha256Verifier } from './credentials.js';
import { assertSettled, withTenant, type Visible } from './tenant-access.js';

/**
 * Suspends a tenant: its role may no longer log in, its sessions end (unless asked not
 * to), its pool leaves the pooler. Data, quota and credentials stay; resumeTenant undoes it.
 */
export async function suspendTenant(deps: Deps, op: OperationContext, input: { slug: string; reason?: string | null; terminateConnections?: boolean | null }, visible: Visible): Promise<Tenant> {
  return withTenant(deps, input.slug, visible, async (tenant, cluster) => {
    if (tenant.status === 'SUSPENDED') return tenant;
    if (tenant.status !== 'ACTIVE') throw new UserError('TENANT_BUSY', `tenant ${tenant.slug} is ${tenant.status}`, 'slug');
    await cluster.query(disableLogin(tenant.roleName));
    const ended = input.terminateConnections === false ? 0 : (await cluster.query<{ terminated: number }>(terminateBackendsOf, [tenant.roleName, tenant.databaseName])).rows[0]?.terminated ?? 0;
    const suspended = await deps.db.tenant.update({ where: { id: tenant.id }, data: { status: 'SUSPENDED' } });
    await deps.pools.sync();
    await recordAuditEvent(deps.db, op, { category: 'tenant', action: 'tenant.suspended', tenant, subject: tenant.roleName, metadata: { reason: input.reason ?? null, terminatedConnections: ended } });
    return suspended;
  });
}

export async function resumeTenant(deps: Deps, op: OperationContext, input: { slug: string }, visible: Visible): Promise<Tenant> {
  return withTenant(deps, input.slug, visible, async (tenant, cluster) => {
    if (tenant.status === 'ACTIVE') return tenant;
    if (tenant.status !== 'SUSPENDED') throw new UserError('TENANT_BUSY', `tenant ${tenant.slug} is ${tenant.status}`, 'slug');
    await cluster.query(enableLogin(tenant.roleName));
    const resumed = await deps.db.tenant.update({ where: { id: tenant.id }, data: { status: 'ACTIVE' } });
    await deps.pools.sync();
    await recordAuditEvent(deps.db, op, { category: 'tenant', action: 'tenant.resumed', tenant, subject: tenant.roleName });
    return resumed;
  });
}

/**
 * A new password for the tenant's role (as a SCRAM verifier), returned once in connection
 * strings; sessions already open keep working. The pooler's auth file follows.
 */
export async function rotateTenantCredentials(
  deps: Deps,
  op: OperationContext,
  input: { slug: string },
  visible: Visible,
): Promise<{ tenant: Tenant; connectionString: string; pooledConnectionString: string | null }> {
  return withTenant(deps, input.slug, visible, async (tenant, cluster) => {
    assertSettled(tenant, 'a rotation');
    const password = generatePassword();
    await cluster.query(setRolePassword(tenant.roleName, scramSha256Verifier(password)));
    await deps.pools.sync();
    await recordAuditEvent(deps.db, op, { category: 'security', action: 'tenant.credentials.rotated', tenant, subject: tenant.roleName });
    const credentials = { user: tenant.roleName, password, database: tenant.databaseName };
    const pooler = deps.pooler.address;
    return {
      tenant,
      connectionString: buildConnectionString({ host: deps.config.TENANT_HOST ?? cluster.host, port: cluster.port, ...credentials }),
      pooledConnectionString: pooler ? buildConnectionString({ host: deps.config.TENANT_HOST ?? pooler.host, port: pooler.port, ...credentials }) : null,
    };
  });
}
