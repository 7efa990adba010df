// The moves module's GraphQL: the TenantMove node, Tenant.moves, the moveTenant mutation and the tenantMove subscription.
import './TenantMove.js';
import './moveTenant.js';
import './tenantMoveSubscription.js';

export { TenantMoveRef } from './TenantMove.js';
