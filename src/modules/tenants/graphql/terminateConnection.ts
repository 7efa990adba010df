import { TenantConnections } from '../terminate-connection.js';
import type { Tenant } from '../tenant-store.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from './Tenant.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const TerminateConnectionInput = builder.inputType('TerminateConnectionInput', {
  fields: (t) => ({
    slug: t.string({ required: true }),
    pid: t.int({ required: true, description: 'The backend\'s process id (pg_stat_activity.pid).' }),
  }),
});

const TerminateConnectionPayload = builder.objectRef<Payload<{ tenant: Tenant; pid: number }>>('TerminateConnectionPayload').implement({
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, resolve: (p) => p.tenant ?? null }),
    terminatedPid: t.int({ nullable: true, resolve: (p) => p.pid ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('terminateConnection', (t) =>
  t.field({
    type: TerminateConnectionPayload,
    description: 'Ends one session of the tenant\'s role. Any other pid (another tenant\'s, the control plane\'s) is NOT_FOUND.',
    authScopes: { admin: true, tenantAdmin: true },
    args: { input: t.arg({ type: TerminateConnectionInput, required: true }) },
    resolve: (_, { input }, ctx) => withUserErrors(input, () => ctx.services.get(TenantConnections).terminateConnection(ctx.op, input, ctx.canSee)),
  }),
);
