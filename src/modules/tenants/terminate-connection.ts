import type { Tenant } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { UserError } from '../../platform/errors.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import { tenantBackend, terminateBackend } from './backends.sql.js';
import type { TenantAccess, Visible } from './tenant-access.js';

/** A tenant's sessions, as its admins may act on them. */
export class TenantConnections {
  constructor(private readonly p: { db: ControlClient; access: TenantAccess }) {}

  /**
   * Ends one session of a tenant: a backend of its role. Any other pid — another
   * tenant's, the control plane's, a server process — is NOT_FOUND.
   */
  terminateConnection(op: OperationContext, input: { slug: string; pid: number }, visible: Visible): Promise<{ tenant: Tenant; pid: number }> {
    const { db, access } = this.p;
    return access.withTenant(input.slug, visible, async (tenant, cluster) => {
      const notFound = new UserError('NOT_FOUND', `tenant ${tenant.slug} has no connection with pid ${input.pid}`, 'pid');
      if (!Number.isInteger(input.pid) || input.pid <= 0) throw notFound;
      // Only the tenant role's own sessions: never the control plane's (a superuser, even in the tenant's database).
      const { rowCount } = await cluster.query(tenantBackend, [input.pid, tenant.roleName]);
      if (!rowCount) throw notFound;
      // Recorded before it happens: no session is ended without its audit event.
      await recordAuditEvent(db, op, { category: 'connection', action: 'connection.terminated', tenant, subject: String(input.pid), metadata: { pid: input.pid } });
      const ended = await cluster.query<{ terminated: boolean }>(terminateBackend, [input.pid]);
      if (!ended.rows[0]?.terminated) throw notFound;
      return { tenant, pid: input.pid };
    });
  }
}
