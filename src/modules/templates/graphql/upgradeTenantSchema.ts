import { UserError } from '../../../platform/errors.js';
import { SchemaUpgrades, type UpgradeResult } from '../upgrade-tenant-schema.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from '../../tenants/graphql/index.js';
import { UserErrorRef, userErrorShape, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const UpgradeTenantSchemaInput = builder.inputType('UpgradeTenantSchemaInput', {
  description: 'Which tenant to upgrade, and to which version.',
  fields: (t) => ({
    slug: t.string({ required: true, description: 'The tenant to upgrade.' }),
    targetVersion: t.string({ required: false, description: 'Default: the newest version with the tenant\'s major version.' }),
  }),
});

const FailedStepRef = builder.objectRef<{ version: string; message: string }>('FailedSchemaStep').implement({
  description: 'A template step that failed on a tenant and was rolled back.',
  fields: (t) => ({
    version: t.exposeString('version', { description: 'The template version of the step.' }),
    message: t.exposeString('message', { description: 'PostgreSQL\'s error.' }),
  }),
});

const UpgradeTenantSchemaPayload = builder.objectRef<Payload<UpgradeResult>>('UpgradeTenantSchemaPayload').implement({
  description: 'The result of upgradeTenantSchema: what was applied, and the step that failed if one did.',
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, description: 'The tenant; null when the mutation was refused.', resolve: (p) => p.tenant ?? null }),
    fromVersion: t.string({ nullable: true, description: 'The tenant\'s schema version before; null when the mutation was refused.', resolve: (p) => p.fromVersion ?? null }),
    toVersion: t.string({ nullable: true, description: 'Where the tenant is now.', resolve: (p) => p.toVersion ?? null }),
    appliedVersions: t.stringList({ description: 'The steps applied by this call, in order (empty when already at the target).', resolve: (p) => p.applied ?? [] }),
    failedStep: t.field({ type: FailedStepRef, nullable: true, description: 'The step that failed and was rolled back.', resolve: (p) => p.failed ?? null }),
    userErrors: t.field({ type: [UserErrorRef], description: 'What went wrong, when the mutation was refused (empty on success).', resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('upgradeTenantSchema', (t) =>
  t.field({
    type: UpgradeTenantSchemaPayload,
    description: 'Admins only. Applies the missing template steps to one tenant database, in order, each in its own transaction.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpgradeTenantSchemaInput, required: true, description: 'The tenant and, optionally, the target version.' }) },
    resolve: async (_, { input }, ctx) => {
      const payload = await withUserErrors('upgradeTenantSchema', input, () => ctx.services.get(SchemaUpgrades).upgradeTenantSchema(ctx.op, input, ctx.canSee));
      // A failed step is reported beside the result: the tenant stays at its last good version.
      if (payload.failed) {
        const message = `step ${payload.failed.version} failed and was rolled back: ${payload.failed.message}`;
        payload.userErrors.push(userErrorShape(new UserError('UPGRADE_FAILED', message, 'targetVersion')));
      }
      return payload;
    },
  }),
);
