import { TemplateCatalog, type SchemaTemplate, type TemplateVersion } from '../template-catalog.js';
import type { ExtensionRequirement } from '../../extensions/index.js';
import { builder } from '../../../graphql/builder.js';

const ExtensionRequirementRef = builder.objectRef<ExtensionRequirement>('ExtensionRequirement').implement({
  description: 'An extension a template version uses.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The extension\'s name (pg_available_extensions.name).' }),
    minVersion: t.exposeString('minVersion', { nullable: true, description: 'The oldest version that will do; null: any.' }),
  }),
});

const SchemaTemplateVersionRef = builder.objectRef<TemplateVersion>('SchemaTemplateVersion').implement({
  description: 'One version (one step) of a schema template.',
  fields: (t) => ({
    version: t.exposeString('version', { description: 'Semantic version, e.g. "1.2.0"; a new major version is not upgraded to.' }),
    description: t.exposeString('description', { description: 'What this step changes.' }),
    requiredExtensions: t.field({
      type: [ExtensionRequirementRef],
      description: 'Extensions a tenant must have: provisioning fails without them.',
      resolve: (v) => v.extensions.required,
    }),
    optionalExtensions: t.field({
      type: [ExtensionRequirementRef],
      description: 'Extensions installed when the cluster offers them, skipped otherwise.',
      resolve: (v) => v.extensions.optional,
    }),
  }),
});

const SchemaTemplateRef = builder.objectRef<SchemaTemplate>('SchemaTemplate').implement({
  description: 'A versioned tenant schema kept in the repository (templates/<name>/<version>).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The template\'s name (its folder under templates/); what provisionTenant takes.' }),
    latestVersion: t.string({ description: 'Its newest version.', resolve: (tpl) => tpl.versions.at(-1)!.version }),
    versions: t.field({ type: [SchemaTemplateVersionRef], description: 'Oldest first.', resolve: (tpl) => tpl.versions }),
  }),
});

builder.queryField('schemaTemplates', (t) =>
  t.field({
    type: [SchemaTemplateRef],
    description: 'The schema templates tenants can be provisioned from (any valid key).',
    resolve: (_, __, ctx) => ctx.services.get(TemplateCatalog).list(),
  }),
);
