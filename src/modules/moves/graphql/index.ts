// The moves module's GraphQL: the TenantMove node, Tenant.moves, and the moveTenant mutation.
import './TenantMove.js';
import './moveTenant.js';

export { TenantMoveRef } from './TenantMove.js';
