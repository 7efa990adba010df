import { TenantExtensions, type ExtensionUpdate } from '../tenant-extensions.js';
import { builder } from '../../../graphql/builder.js';
import { InstalledExtensionRef, readAt } from './Extension.js';
import { TenantRef } from '../../tenants/graphql/index.js';
import { UserErrorRef, userErrorShape, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const UpdateTenantExtensionsInput = builder.inputType('UpdateTenantExtensionsInput', {
  description: 'Which tenant\'s extensions to update.',
  fields: (t) => ({ slug: t.string({ required: true, description: 'The tenant.' }) }),
});

const UpdateTenantExtensionsPayload = builder.objectRef<Payload<ExtensionUpdate>>('UpdateTenantExtensionsPayload').implement({
  description: 'The result of updateTenantExtensions: what was changed, and what was left as it is (in userErrors).',
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, description: 'The tenant; null when the mutation was refused.', resolve: (p) => p.tenant ?? null }),
    extensions: t.field({ type: [InstalledExtensionRef], description: 'After the update, read from the tenant database.', resolve: (p) => readAt(p.after ?? [], new Date()) }),
    changes: t.stringList({ description: 'What was done, e.g. "moved pg_trgm from public to extensions", "updated pg_trgm 1.3 → 1.6". An extension left as it is (in a schema the tenant can write to, or owned by another role) is a userError that says why and what a superuser runs.', resolve: (p) => p.changes ?? [] }),
    userErrors: t.field({ type: [UserErrorRef], description: 'Why the mutation was refused, or which extensions were left as they are and why.', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('updateTenantExtensions', (t) =>
  t.field({
    type: UpdateTenantExtensionsPayload,
    description:
      'Admins only. Installs MISSING extensions and runs ALTER EXTENSION … UPDATE for OUTDATED ones, to the newest version the server offers. ' +
      'An OUTDATED extension outside the extensions schema (e.g. installed in public by hand) is moved there first when it is relocatable and the ' +
      'control plane is a superuser; otherwise it is left as it is and EXTENSION_UNSAFE_SCHEMA in userErrors names it and says why, beside what was done.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateTenantExtensionsInput, required: true, description: 'The tenant.' }) },
    resolve: async (_, { input }, ctx) => {
      const payload = await withUserErrors('updateTenantExtensions', input, () => ctx.services.get(TenantExtensions).updateTenantExtensions(ctx.op, input, ctx.canSee));
      return { ...payload, userErrors: [...payload.userErrors, ...(payload.problems ?? []).map(userErrorShape)] };
    },
  }),
);
