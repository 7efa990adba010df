import type { Tenant } from '../../generated/prisma/client.js';
import { tenantBackend, terminateBackend } from './backends.sql.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../../deps.js';
import { UserError } from '../../platform/errors.js';
import { withTenant, type Visible } from './tenant-access.js';

/**
 * Ends one session of a tenant: a backend of its role. Any other pid — another
 * tenant's, the control plane's, a server process — is NOT_FOUND.
 */
export async function terminateConnection(deps: Deps, op: OperationContext, input: { slug: string; pid: number }, visible: Visible): Promise<{ tenant: Tenant; pid: number }> {
  return withTenant(deps, input.slug, visible, async (tenant, cluster) => {
    const notFound = new UserError('NOT_FOUND', `tenant ${tenant.slug} has no connection with pid ${input.pid}`, 'pid');
    if (!Number.isInteger(input.pid) || input.pid <= 0) throw notFound;
    // Only the tenant role's own sessions: never the control plane's (a superuser, even in the tenant's database).
    const { rowCount } = await cluster.query(tenantBackend, [input.pid, tenant.roleName]);
    if (!rowCount) throw notFound;
    // Recorded before it happens: no session is ended without its audit event.
    await recordAuditEvent(deps.db, op, { category: 'connection', action: 'connection.terminated', tenant, subject: String(input.pid), metadata: { pid: input.pid } });
    const ended = await cluster.query<{ terminated: boolean }>(terminateBackend, [input.pid]);
    if (!ended.rows[0]?.terminated) throw notFound;
    return { tenant, pid: input.pid };
  });
}
