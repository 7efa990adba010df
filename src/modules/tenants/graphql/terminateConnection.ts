import { TenantConnections } from '../terminate-connection.js';
import type { Tenant } from '../tenant-store.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from './Tenant.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const TerminateConnectionInput = builder.inputType('TerminateConnectionInput', {
  description: 'Which session of which tenant to end.',
  fields: (t) => ({
    slug: t.string({ required: true, description: 'The tenant whose session it is.' }),
    pid: t.int({ required: true, description: 'The backend\'s process id (pg_stat_activity.pid).' }),
  }),
});

const TerminateConnectionPayload = builder.objectRef<Payload<{ tenant: Tenant; pid: number }>>('TerminateConnectionPayload').implement({
  description: 'The result of terminateConnection.',
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, description: 'The tenant; null when the mutation was refused.', resolve: (p) => p.tenant ?? null }),
    terminatedPid: t.int({ nullable: true, description: 'The process id of the ended session; null when the mutation was refused.', resolve: (p) => p.pid ?? null }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('terminateConnection', (t) =>
  t.field({
    type: TerminateConnectionPayload,
    description: 'Admins, or the tenant\'s own TENANT_ADMIN key. Ends one session of the tenant\'s role or of its read-only credentials. Any other pid (another tenant\'s, the control plane\'s) is NOT_FOUND.',
    authScopes: { admin: true, tenantAdmin: true },
    args: { input: t.arg({ type: TerminateConnectionInput, required: true, description: 'The tenant and the session\'s pid.' }) },
    resolve: (_, { input }, ctx) => withUserErrors('terminateConnection', input, () => ctx.services.get(TenantConnections).terminateConnection(ctx.op, input, ctx.canSee)),
  }),
);
