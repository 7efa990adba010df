import { TemplateCatalog, type SchemaTemplate, type TemplateVersion } from '../template-catalog.js';
import type { ExtensionRequirement } from '../../extensions/index.js';
import { builder } from '../../../graphql/builder.js';

const ExtensionRequirementRef = builder.objectRef<ExtensionRequirement>('ExtensionRequirement').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    minVersion: t.exposeString('minVersion', { nullable: true }),
  }),
});

const SchemaTemplateVersionRef = builder.objectRef<TemplateVersion>('SchemaTemplateVersion').implement({
  fields: (t) => ({
    version: t.exposeString('version'),
    description: t.exposeString('description'),
    requiredExtensions: t.field({ type: [ExtensionRequirementRef], resolve: (v) => v.extensions.required }),
    optionalExtensions: t.field({ type: [ExtensionRequirementRef], resolve: (v) => v.extensions.optional }),
  }),
});

const SchemaTemplateRef = builder.objectRef<SchemaTemplate>('SchemaTemplate').implement({
  description: 'A versioned tenant schema kept in the repository (templates/<name>/<version>).',
  fields: (t) => ({
    name: t.exposeString('name'),
    latestVersion: t.string({ resolve: (tpl) => tpl.versions.at(-1)!.version }),
    versions: t.field({ type: [SchemaTemplateVersionRef], description: 'Oldest first.', resolve: (tpl) => tpl.versions }),
  }),
});

builder.queryField('schemaTemplates', (t) =>
  t.field({ type: [SchemaTemplateRef], resolve: (_, __, ctx) => ctx.services.get(TemplateCatalog).list() }),
);
