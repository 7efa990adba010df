import { ReadOnlyCredentials, readOnlyStatus, type ReadOnlyCredential } from '../index.js';
import { TenantRef } from '../../tenants/graphql/index.js';
import { builder } from '../../../graphql/builder.js';
import { isUuid, localIdOf } from '../../../graphql/ids.js';
import { UserErrorRef, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const ReadOnlyCredentialsStatusEnum = builder.enumType('ReadOnlyCredentialsStatus', {
  description: 'Whether read-only credentials can log in.',
  values: {
    ACTIVE: { description: 'Can log in (unless the tenant is suspended).' },
    EXPIRED: { description: 'expiresAt has passed: PostgreSQL refuses the password; the role stays until revoked or the tenant is deprovisioned.' },
    REVOKED: { description: 'Revoked: the role is dropped.' },
  },
});

export const ReadOnlyCredentialsRef = builder.objectRef<ReadOnlyCredential>('ReadOnlyCredentials');

builder.node(ReadOnlyCredentialsRef, {
  description:
    'A second PostgreSQL login role of a tenant\'s that may only read (SELECT on the tables, views and sequences the tenant owns, now and later), ' +
    'for BI tools. Seen by admins and by keys of its tenant; the password is shown once, by createReadOnlyCredentials.',
  id: { resolve: (c) => c.id },
  loadMany: async (ids, ctx) => {
    const rows = await ctx.services.get(ReadOnlyCredentials).byIds(ids.filter(isUuid));
    return ids.map((id) => rows.find((r) => r.id === id && ctx.canSee(r.tenant)) ?? null);
  },
  fields: (t) => ({
    name: t.exposeString('name', { nullable: true, description: 'What the caller called them, if anything (at most 100 characters).' }),
    roleName: t.exposeString('roleName', { description: 'The PostgreSQL role to log in as: the tenant\'s role, ".ro.", 8 hex digits.' }),
    maxConnections: t.exposeInt('maxConnections', {
      description: 'The role\'s CONNECTION LIMIT (sessions at once). Its sessions also count against the tenant\'s quota, which the database\'s CONNECTION LIMIT enforces.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When they were created.' }),
    createdBy: t.exposeString('createdBy', { description: 'The actor (API key) that created them.' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'From then on PostgreSQL refuses the password (the role\'s VALID UNTIL); open sessions go on.' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true, description: 'When they were revoked (the role dropped); null until then.' }),
    status: t.field({ type: ReadOnlyCredentialsStatusEnum, description: 'ACTIVE, EXPIRED or REVOKED, as of now.', resolve: (c) => readOnlyStatus(c) }),
  }),
});

builder.objectField(TenantRef, 'readOnlyCredentials', (t) =>
  t.field({
    type: [ReadOnlyCredentialsRef],
    description: 'The tenant\'s read-only credentials, revoked and expired ones included, oldest first (for a page of tenants, one query for all of them).',
    resolve: (tenant, _, ctx) =>
      ctx.loader<string, ReadOnlyCredential[]>('readOnlyCredentials', null, (ids) => ctx.services.get(ReadOnlyCredentials).byTenantIds(ids)).load(tenant.id),
  }),
);

const CreateReadOnlyCredentialsPayload = builder
  .objectRef<Payload<{ credentials: ReadOnlyCredential; connectionString: string }>>('CreateReadOnlyCredentialsPayload')
  .implement({
    description: 'The new read-only credentials and, once, their connection string.',
    fields: (t) => ({
      credentials: t.field({ type: ReadOnlyCredentialsRef, nullable: true, description: 'The new credentials; null with userErrors.', resolve: (p) => p.credentials ?? null }),
      connectionString: t.string({
        nullable: true,
        description: 'Direct to the tenant\'s database, with the password. Shown once: it cannot be read again.',
        resolve: (p) => p.connectionString ?? null,
      }),
      userErrors: t.field({ type: [UserErrorRef], description: 'INVALID_INPUT, NOT_FOUND, INVALID_STATE, TENANT_BUSY.', resolve: (p) => p.userErrors }),
    }),
  });

const CreateReadOnlyCredentialsInput = builder.inputType('CreateReadOnlyCredentialsInput', {
  description: 'What createReadOnlyCredentials makes.',
  fields: (t) => ({
    slug: t.string({ required: true, description: 'The tenant (ACTIVE).' }),
    expiresAt: t.field({ type: 'DateTime', required: true, description: 'When PostgreSQL starts refusing the password: in the future, at most 366 days ahead.' }),
    name: t.string({ required: false, description: 'A label, e.g. the tool they are for (at most 100 characters).' }),
    maxConnections: t.int({
      required: false,
      description: 'Sessions at once for these credentials: 1 to the tenant\'s quota; default a tenth of the quota (at least 1).',
    }),
  }),
});

builder.mutationField('createReadOnlyCredentials', (t) =>
  t.field({
    type: CreateReadOnlyCredentialsPayload,
    description:
      'A second login role for the tenant that may only read (SELECT on its tables, views and sequences, present and future), with its own connection limit and an expiry. ' +
      'Not idempotent: each call makes new credentials. Admins and the tenant\'s TENANT_ADMIN keys. Audited as tenant.read_only_credentials.created.',
    authScopes: { admin: true, tenantAdmin: true },
    args: { input: t.arg({ type: CreateReadOnlyCredentialsInput, required: true, description: 'The tenant, the expiry, and optionally a name and a connection limit.' }) },
    resolve: (_, { input }, ctx) => withUserErrors('createReadOnlyCredentials', input, () => ctx.services.get(ReadOnlyCredentials).createReadOnlyCredentials(ctx.op, input, ctx.canSee)),
  }),
);

const RevokeReadOnlyCredentialsPayload = builder.objectRef<Payload<{ credentials: ReadOnlyCredential }>>('RevokeReadOnlyCredentialsPayload').implement({
  description: 'The revoked read-only credentials.',
  fields: (t) => ({
    credentials: t.field({ type: ReadOnlyCredentialsRef, nullable: true, description: 'With revokedAt set; null with userErrors.', resolve: (p) => p.credentials ?? null }),
    userErrors: t.field({ type: [UserErrorRef], description: 'NOT_FOUND, TENANT_BUSY.', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('revokeReadOnlyCredentials', (t) =>
  t.field({
    type: RevokeReadOnlyCredentialsPayload,
    description:
      'Ends the role\'s sessions, takes back its privileges and drops it. Revoking again answers the same. Admins and the tenant\'s TENANT_ADMIN keys. ' +
      'Audited as tenant.read_only_credentials.revoked.',
    authScopes: { admin: true, tenantAdmin: true },
    args: {
      input: t.arg({
        type: builder.inputType('RevokeReadOnlyCredentialsInput', {
          description: 'Which read-only credentials to revoke.',
          fields: (f) => ({ id: f.id({ required: true, description: 'The ReadOnlyCredentials id.' }) }),
        }),
        required: true,
        description: 'The credentials to revoke.',
      }),
    },
    resolve: (_, { input }, ctx) =>
      withUserErrors('revokeReadOnlyCredentials', input, async () => ({
        credentials: await ctx.services.get(ReadOnlyCredentials).revokeReadOnlyCredentials(ctx.op, localIdOf(input.id.toString(), 'ReadOnlyCredentials'), ctx.canSee),
      })),
  }),
);
