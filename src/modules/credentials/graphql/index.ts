// The credentials module's GraphQL: the ReadOnlyCredentials node, Tenant.readOnlyCredentials and the two mutations.
import './ReadOnlyCredentials.js';

export { ReadOnlyCredentialsRef } from './ReadOnlyCredentials.js';
