// Read-only credentials: a tenant's second login role, for tools that only read (BI), with its
// own connection limit and expiry; created, listed and revoked here.
export { ReadOnlyCredentials, MAX_READ_ONLY_LIFETIME_MS, readOnlyStatus, type ReadOnlyCredential, type ReadOnlyStatus } from './read-only-credentials.js';
