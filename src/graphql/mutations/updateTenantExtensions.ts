import type { Tenant } from '../../generated/prisma/client.js';
import { updateTenantExtensions, type ExtensionUpdate } from '../../domain/extensions/tenant-extensions.js';
import { builder } from '../builder.js';
import { InstalledExtensionRef, readAt } from '../nodes/Extension.js';
import { TenantRef } from '../nodes/Tenant.js';
import { UserErrorRef, withUserErrors, type Payload } from '../user-errors.js';

const UpdateTenantExtensionsInput = builder.inputType('UpdateTenantExtensionsInput', {
  fields: (t) => ({ slug: t.string({ required: true }) }),
});

const UpdateTenantExtensionsPayload = builder.objectRef<Payload<ExtensionUpdate>>('UpdateTenantExtensionsPayload').implement({
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, resolve: (p) => (p.tenant as Tenant | undefined) ?? null }),
    extensions: t.field({ type: [InstalledExtensionRef], description: 'After the update, read from the tenant database.', resolve: (p) => readAt(p.after ?? [], new Date()) }),
    changes: t.stringList({
      description: 'What was done, e.g. "updated pg_trgm 1.3 → 1.6", and any extension left as it is with why (e.g. one a superuser owns, with the statement a superuser runs).',
      resolve: (p) => p.changes ?? [],
    }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('updateTenantExtensions', (t) =>
  t.field({
    type: UpdateTenantExtensionsPayload,
    description: 'Installs MISSING extensions and runs ALTER EXTENSION … UPDATE for OUTDATED ones, to the newest version the server offers.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateTenantExtensionsInput, required: true }) },
    resolve: (_, { input }, ctx) => withUserErrors(input, () => updateTenantExtensions(ctx.deps, ctx.op, input, ctx.canSee)),
  }),
);
