// The extensions of tenant databases: each template's policy, what the servers offer, what each
// tenant has installed (recorded and read live), and installing or updating them to the policy.
export { extensionRequirementSchema, type ExtensionPolicy, type ExtensionRequirement } from './extension-policy.js';
export { extensionReport } from './extension-status.js';
export { availableExtensions } from './extensions.sql.js';
export { installExtensions } from './install-extensions.js';
export { OfferedExtensions, type OfferedExtension } from './offered-extensions.js';
export { readInstalledExtensions, recordExtensions, TenantExtensions } from './tenant-extensions.js';
