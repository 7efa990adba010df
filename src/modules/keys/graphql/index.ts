// The keys module's GraphQL: the ApiKey node and the apiKeys list, the viewer query, createApiKey and revokeApiKey.
import './ApiKey.js';
import './Viewer.js';
import './createApiKey.js';
import './revokeApiKey.js';

export { ApiKeyRef } from './ApiKey.js';
export { ViewerRef } from './Viewer.js';
