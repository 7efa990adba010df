import { compatibilityOf } from '../compatibility.js';
import { TENANT_COMPONENT } from '../schema-version-ledger.js';
import { SchemaVersionStore, type RecordedSchemaVersion } from '../schema-version-store.js';
import { TemplateCatalog } from '../template-catalog.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from '../../tenants/graphql/index.js';

const CompatibilityEnum = builder.enumType('SchemaCompatibility', {
  description: 'How a tenant\'s recorded schema version compares with its template\'s newest.',
  values: {
    COMPATIBLE: { description: 'Same major version, at or past the expected one.' },
    UPGRADE_AVAILABLE: { description: 'Same major version, older than expected: upgradeTenantSchema applies the missing steps.' },
    INCOMPATIBLE: { description: 'A different major version.' },
  },
});

const SchemaVersionRef = builder.objectRef<RecordedSchemaVersion>('SchemaVersion').implement({
  description: 'The schema version of a tenant database (its __SchemaVersion row), as last recorded by Tenantry.',
  fields: (t) => ({
    component: t.exposeString('component', { description: 'What the version is of: the tenant schema, or another component recorded in the same table.' }),
    version: t.exposeString('version', { description: 'The component\'s version, e.g. "1.2.0".' }),
    appliedAt: t.expose('appliedAt', { type: 'DateTime', description: 'When that version was applied.' }),
    appliedBy: t.exposeString('appliedBy', { nullable: true, description: 'Who applied it: "tenantry" for a template database copied at provisioning, the actor for an upgrade; null when not recorded.' }),
    description: t.exposeString('description', { nullable: true, description: 'The step\'s description; null when it has none.' }),
    expectedVersion: t.string({
      nullable: true,
      description: 'The newest version of the tenant\'s template.',
      resolve: (v, _, ctx) => ctx.services.get(TemplateCatalog).resolve(v.tenant.templateName)?.version ?? null,
    }),
    compatibility: t.field({
      type: CompatibilityEnum,
      description: 'How version compares with expectedVersion (INCOMPATIBLE when the template is unknown).',
      resolve: (v, _, ctx) => {
        const expected = ctx.services.get(TemplateCatalog).resolve(v.tenant.templateName)?.version;
        return expected ? compatibilityOf(v.version, expected) : 'INCOMPATIBLE';
      },
    }),
  }),
});

builder.objectFields(TenantRef, (t) => ({
  schemaVersions: t.loadableList({
    type: SchemaVersionRef,
    description: 'Every component\'s version in the tenant\'s __SchemaVersion, as last recorded.',
    load: (ids: string[], ctx) => ctx.services.get(SchemaVersionStore).rowsByTenantIds(ids),
    resolve: (tenant) => tenant.id,
  }),
  schemaVersion: t.loadable({
    type: SchemaVersionRef,
    nullable: true,
    description: 'The version Tenantry last recorded for this tenant\'s database (no connection to it is opened).',
    load: (ids: string[], ctx) => ctx.services.get(SchemaVersionStore).byTenantIds(ids, TENANT_COMPONENT),
    resolve: (tenant) => tenant.id,
  }),
}));
