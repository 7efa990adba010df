import { UserError } from '../../../platform/errors.js';
import { SchemaUpgrades, type UpgradeResult } from '../upgrade-tenant-schema.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from '../../tenants/graphql/index.js';
import { UserErrorRef, userErrorShape, withUserErrors, type Payload } from '../../../graphql/user-errors.js';

const UpgradeTenantSchemaInput = builder.inputType('UpgradeTenantSchemaInput', {
  fields: (t) => ({
    slug: t.string({ required: true }),
    targetVersion: t.string({ required: false, description: 'Default: the newest version with the tenant\'s major version.' }),
  }),
});

const FailedStepRef = builder.objectRef<{ version: string; message: string }>('FailedSchemaStep').implement({
  fields: (t) => ({ version: t.exposeString('version'), message: t.exposeString('message') }),
});

const UpgradeTenantSchemaPayload = builder.objectRef<Payload<UpgradeResult>>('UpgradeTenantSchemaPayload').implement({
  fields: (t) => ({
    tenant: t.field({ type: TenantRef, nullable: true, resolve: (p) => p.tenant ?? null }),
    fromVersion: t.string({ nullable: true, resolve: (p) => p.fromVersion ?? null }),
    toVersion: t.string({ nullable: true, description: 'Where the tenant is now.', resolve: (p) => p.toVersion ?? null }),
    appliedVersions: t.stringList({ resolve: (p) => p.applied ?? [] }),
    failedStep: t.field({ type: FailedStepRef, nullable: true, description: 'The step that failed and was rolled back.', resolve: (p) => p.failed ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('upgradeTenantSchema', (t) =>
  t.field({
    type: UpgradeTenantSchemaPayload,
    description: 'Applies the missing template steps to one tenant database, in order, each in its own transaction.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpgradeTenantSchemaInput, required: true }) },
    resolve: async (_, { input }, ctx) => {
      const payload = await withUserErrors(input, () => ctx.services.get(SchemaUpgrades).upgradeTenantSchema(ctx.op, input, ctx.canSee));
      // A failed step is reported beside the result: the tenant stays at its last good version.
      if (payload.failed) {
        const message = `step ${payload.failed.version} failed and was rolled back: ${payload.failed.message}`;
        payload.userErrors.push(userErrorShape(new UserError('UPGRADE_FAILED', message, 'targetVersion')));
      }
      return payload;
    },
  }),
);
