// Tenants: their records, the way into one under its lock, and what happens to a tenant's own
// database and role on its cluster (securing, suspending, credentials, sessions, deprovisioning).
export { TenantStore, type Tenant } from './tenant-store.js';
export { TENANT_COLUMNS } from './tenant-row.sql.js';
export { TenantAccess, assertSettled, type Visible } from './tenant-access.js';
export { TenantChanges } from './tenant-changes.js';
export { TenantSecurity, tryMoveToExtensionSchema } from './secure-tenant.js';
export { TenantLifecycle } from './tenant-lifecycle.js';
export { TenantDeprovisioning } from './deprovision-tenant.js';
export { TenantConnections } from './terminate-connection.js';
export { ConnectionStrings } from './connection-strings.js';
export { CredentialHandoffs, validateIdempotencyKey } from './credential-handoff.js';
export { generatePassword, newCredentials, scramSha256Verifier } from './credentials.js';
export { readOnlyRoleName, SESSION_TENANT_ROLE, tenantObjectName, tenantRoleOf, validateSlug, validateText } from './names.js';
export { dropTenantObjects } from './drop-tenant-objects.js';
export {
  lockSchemaVersionTable,
  readSchemaVersion,
  readSchemaVersionIn,
  SchemaVersionTableError,
  TENANT_COMPONENT,
  type SchemaVersionRow,
} from './schema-version-record.js';

// SQL other modules run on a tenant's objects (creating them, limits, sessions, extensions).
export {
  createDatabaseFromTemplate,
  createEmptyDatabase,
  databaseExists,
  dropDatabase,
  grantTenantDatabaseAccess,
  handTablesToTenant,
  normaliseTenantDatabase,
  revokeConnectFromPublic,
  sealTemplateDatabase,
  setDatabaseConnectionLimit,
  setDatabaseOwnerToUs,
  setTenantSearchPath,
  unsealTemplateDatabase,
} from './databases.sql.js';
export {
  canSetRole,
  createTenantRole,
  disableLogin,
  enableLogin,
  grantRoleToControlPlane,
  roleExists,
  setRoleConnectionLimit,
  setRolePassword,
  tenantLimits,
} from './roles.sql.js';
export { countBackendsOf, terminateNewestBackendsOf } from './backends.sql.js';
export { createExtensionSchema, EXTENSION_SCHEMA, installedExtensions, moveExtension } from './extension-schema.sql.js';
