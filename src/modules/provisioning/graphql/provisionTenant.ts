import { builder } from '../../../graphql/builder.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';
import { TenantStore, type Tenant } from '../../tenants/index.js';
import { TenantRef } from '../../tenants/graphql/index.js';
import { PlacementInput, placementRequestOf } from '../../quotas/graphql/index.js';
import { TenantProvisioning } from '../provision-tenant.js';

const ProvisionTenantInput = builder.inputType('ProvisionTenantInput', {
  description: 'The tenant to create.',
  fields: (t) => ({
    slug: t.string({ required: true, description: 'Lowercase letters, digits, "-", "." and "_"; 2 to 40 characters; starts with a letter or digit.' }),
    displayName: t.string({ required: true, description: 'Human-readable name (at most 200 characters).' }),
    maxConnections: t.int({ required: false, description: 'Connection quota; default DEFAULT_MAX_CONNECTIONS, within QUOTA_MIN..QUOTA_MAX.' }),
    template: t.string({ required: false, description: 'Schema template; default "default".' }),
    templateVersion: t.string({ required: false, description: 'Template version; default the newest.' }),
    idempotencyKey: t.string({
      required: false,
      description:
        'Any random token you keep (16 to 200 characters, e.g. a UUID). The same call with the same key returns the same credentials ' +
        'for CREDENTIAL_HANDOFF_TTL_MS (15 minutes): a response that was lost can be fetched again. They are kept encrypted under the key.',
    }),
    placement: t.field({
      type: PlacementInput,
      required: false,
      description: 'Which cluster: by id, or by region and/or labels. Absent: PLACEMENT_POLICY (spread or pack) among every ACTIVE cluster with room. A tenant that exists keeps its cluster.',
    }),
  }),
});

type ProvisionResult = { tenant: Tenant | null; connectionString: string | null; pooledConnectionString: string | null };

const ProvisionTenantPayload = builder.objectRef<Payload<ProvisionResult>>('ProvisionTenantPayload').implement({
  description: 'The result of provisionTenant: the tenant, and its credentials once.',
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, description: 'The tenant (FAILED, with its step, when provisioning failed); null when the input was refused.', resolve: (p) => p.tenant ?? null }),
    connectionString: t.string({
      nullable: true,
      description: 'Direct to PostgreSQL, with the new password. Null when the tenant already existed, unless the same idempotencyKey finds the credentials it was given.',
      resolve: (p) => p.connectionString ?? null,
    }),
    pooledConnectionString: t.string({
      nullable: true,
      description: 'Through the pooler, with the same credentials; null with POOLER=none. Shown once.',
      resolve: (p) => p.pooledConnectionString ?? null,
    }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('provisionTenant', (t) =>
  t.field({
    type: ProvisionTenantPayload,
    description: 'Admins only. Creates a tenant\'s role and database from a template. Idempotent: the same request again returns the tenant.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: ProvisionTenantInput, required: true, description: 'Slug, name, quota, template and idempotency key.' }) },
    resolve: (_, { input }, ctx) =>
      withUserErrors<ProvisionResult>(
        'provisionTenant',
        input,
        () => ctx.services.get(TenantProvisioning).provisionTenant(ctx.op, { ...input, placement: placementRequestOf(input.placement) }),
        // A failed attempt still has a row (FAILED, with its step): return it.
        async () => ({ tenant: await ctx.services.get(TenantStore).bySlug(input.slug) }),
      ),
  }),
);
