// Tenant schema templates: the versioned templates in the repository, the sealed template
// databases tenants are copied from, upgrading a tenant's schema, and the versions recorded.
export { compatibilityOf } from './compatibility.js';
export { failureCauseOf, type FailureCause } from './failure-cause.js';
export { TENANT_COMPONENT } from './schema-version-ledger.js';
export { SchemaVersionStore, mirrorSchemaVersionIn } from './schema-version-store.js';
export { DEFAULT_TEMPLATE, TemplateCatalog, type TemplateVersion } from './template-catalog.js';
export { TemplateDatabases } from './template-databases.js';
export { defaultTarget, SchemaUpgrades } from './upgrade-tenant-schema.js';
