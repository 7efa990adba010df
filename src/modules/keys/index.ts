// API keys: creating, revoking and bootstrapping them (only their hashes are stored), and
// turning the key a request presents into a viewer (cached, rate-limited, audited on failure).
export { announceRevoked, bootstrapAdminKey, mintAdminKey, revokeTenantKeys } from './api-keys.js';
export { ApiKeys } from './api-key-service.js';
export { ApiKeyAuthenticator, RateLimitedError, type AuthFailure, type Credentials } from './key-authenticator.js';
