import type { Tenant } from '../../generated/prisma/client.js';
import { tenantBackend, terminateBackend } from '../../sql/backends.sql.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../deps.js';
import { UserError } from '../errors.js';

/**
 * Ends one session of a tenant: a backend of its role or in its database. Any other
 * pid — another tenant's, the control plane's, a server process — is NOT_FOUND.
 */
export async function terminateConnection(deps: Deps, op: OperationContext, input: { slug: string; pid: number }, visible: (t: Tenant) => boolean): Promise<{ tenant: Tenant; pid: number }> {
  const tenant = await deps.db.tenant.findUnique({ where: { slug: input.slug } });
  if (!tenant || !visible(tenant) || tenant.status === 'DEPROVISIONED') throw new UserError('NOT_FOUND', `no tenant ${input.slug}`, 'slug');
  const cluster = await deps.clusters.get(tenant.clusterId);
  const notFound = new UserError('NOT_FOUND', `tenant ${tenant.slug} has no connection with pid ${input.pid}`, 'pid');
  if (!Number.isInteger(input.pid) || input.pid <= 0) throw notFound;
  // Only the tenant role's own sessions: never the control plane's (a superuser, even in the tenant's database).
  const { rowCount } = await cluster.query(tenantBackend, [input.pid, tenant.roleName]);
  if (!rowCount) throw notFound;
  const ended = await cluster.query<{ terminated: boolean }>(terminateBackend, [input.pid]);
  if (!ended.rows[0]?.terminated) throw notFound;
  await recordAuditEvent(deps.db, op, { category: 'connection', action: 'connection.terminated', tenant, subject: String(input.pid), metadata: { pid: input.pid } });
  return { tenant, pid: input.pid };
}
