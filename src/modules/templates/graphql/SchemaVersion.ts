import { compatibilityOf } from '../compatibility.js';
import type { SchemaVersionRow } from '../../tenants/tenant-queries.js';
import { builder } from '../../../graphql/builder.js';

export const CompatibilityEnum = builder.enumType('SchemaCompatibility', {
  values: {
    COMPATIBLE: { description: 'Same major version, at or past the expected one.' },
    UPGRADE_AVAILABLE: { description: 'Same major version, older than expected: upgradeTenantSchema applies the missing steps.' },
    INCOMPATIBLE: { description: 'A different major version.' },
  },
});

export const SchemaVersionRef = builder.objectRef<SchemaVersionRow>('SchemaVersion').implement({
  description: 'The schema version of a tenant database (its __SchemaVersion row), as last recorded by Tenantry.',
  fields: (t) => ({
    component: t.exposeString('component'),
    version: t.exposeString('version'),
    appliedAt: t.expose('appliedAt', { type: 'DateTime' }),
    appliedBy: t.exposeString('appliedBy', { nullable: true }),
    description: t.exposeString('description', { nullable: true }),
    expectedVersion: t.string({
      nullable: true,
      description: 'The newest version of the tenant\'s template.',
      resolve: (v, _, ctx) => ctx.deps.catalog.resolve(v.tenant.templateName)?.version ?? null,
    }),
    compatibility: t.field({
      type: CompatibilityEnum,
      resolve: (v, _, ctx) => {
        const expected = ctx.deps.catalog.resolve(v.tenant.templateName)?.version;
        return expected ? compatibilityOf(v.version, expected) : 'INCOMPATIBLE';
      },
    }),
  }),
});
