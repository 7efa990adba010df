import type { GraphQLSchema } from 'graphql';
import type { UserErrorCode } from '../platform/errors.js';

// Locking a tenant (TenantLocks) can answer TENANT_BUSY (held, or lost mid-change) and TIMEOUT (no
// control connection came free); TenantAccess.withTenant adds NOT_FOUND; assertSettled INVALID_STATE
// and TENANT_BUSY (still PROVISIONING). The input guard's INVALID_INPUT can come from every mutation.
const UNDER_TENANT_LOCK = ['INVALID_INPUT', 'NOT_FOUND', 'INVALID_STATE', 'TENANT_BUSY', 'TIMEOUT'] as const satisfies readonly UserErrorCode[];

/**
 * The userErrors codes each mutation can return: its description lists them, docs/api.md documents
 * them, and withUserErrors refuses (throws) any other, so a new failure cannot reach clients unannounced.
 */
export const MUTATION_ERROR_CODES = {
  provisionTenant: [
    'INVALID_INPUT',
    'INVALID_SLUG',
    'SLUG_TAKEN',
    'NAME_COLLISION',
    'QUOTA_OUT_OF_RANGE',
    'CLUSTER_CAPACITY_EXCEEDED',
    'TEMPLATE_NOT_FOUND',
    'EXTENSION_UNAVAILABLE',
    'TENANT_BUSY',
    'TIMEOUT',
    'PROVISIONING_FAILED',
    'PLACEMENT_FAILED',
    'NOT_FOUND',
  ],
  deprovisionTenant: [...UNDER_TENANT_LOCK, 'CONFIRMATION_MISMATCH'],
  suspendTenant: UNDER_TENANT_LOCK,
  resumeTenant: UNDER_TENANT_LOCK,
  rotateTenantCredentials: UNDER_TENANT_LOCK,
  terminateConnection: UNDER_TENANT_LOCK,
  refreshTenant: UNDER_TENANT_LOCK,
  updateTenantQuota: [...UNDER_TENANT_LOCK, 'QUOTA_OUT_OF_RANGE', 'CLUSTER_CAPACITY_EXCEEDED'],
  upgradeTenantSchema: [...UNDER_TENANT_LOCK, 'TEMPLATE_NOT_FOUND', 'EXTENSION_UNAVAILABLE', 'UPGRADE_FAILED'],
  updateTenantExtensions: [...UNDER_TENANT_LOCK, 'EXTENSION_UNAVAILABLE', 'EXTENSION_UNSAFE_SCHEMA', 'EXTENSION_NOT_OWNED'],
  createApiKey: ['INVALID_INPUT', 'NOT_FOUND', 'FORBIDDEN'],
  revokeApiKey: ['INVALID_INPUT', 'NOT_FOUND', 'FORBIDDEN'],
  createReadOnlyCredentials: UNDER_TENANT_LOCK,
  revokeReadOnlyCredentials: UNDER_TENANT_LOCK,
  upgradeAllTenantSchemas: ['INVALID_INPUT', 'TEMPLATE_NOT_FOUND'],
  updateAllTenantExtensions: ['INVALID_INPUT', 'TEMPLATE_NOT_FOUND'],
  secureAllTenants: ['INVALID_INPUT', 'TEMPLATE_NOT_FOUND'],
  drainCluster: ['INVALID_INPUT', 'NOT_FOUND', 'INVALID_STATE'],
  reconcilePools: ['INVALID_INPUT'],
  moveTenant: [...UNDER_TENANT_LOCK, 'CLUSTER_UNREACHABLE', 'MOVE_PREFLIGHT_FAILED', 'DUMP_TOOL_UNAVAILABLE'],
  registerCluster: ['INVALID_INPUT', 'CLUSTER_UNREACHABLE', 'CLUSTER_UNSUITABLE'],
  updateCluster: ['INVALID_INPUT', 'NOT_FOUND', 'CLUSTER_UNREACHABLE', 'CLUSTER_UNSUITABLE'],
  cordonCluster: ['INVALID_INPUT', 'NOT_FOUND'],
  removeCluster: ['INVALID_INPUT', 'NOT_FOUND', 'CLUSTER_NOT_EMPTY', 'TENANT_BUSY', 'TIMEOUT'],
} as const satisfies Record<string, readonly UserErrorCode[]>;

export type MutationName = keyof typeof MUTATION_ERROR_CODES;

/** Throws when a mutation answers a code it did not declare: a programming error, never the caller's. */
export function assertDeclaredCode(mutation: MutationName, code: UserErrorCode): void {
  if (!(MUTATION_ERROR_CODES[mutation] as readonly UserErrorCode[]).includes(code)) {
    throw new Error(`${mutation} answered user error ${code}, which MUTATION_ERROR_CODES (src/graphql/mutation-errors.ts) does not declare for it`);
  }
}

/**
 * Appends "Error codes: …" to every mutation's description, from the table; a mutation missing from
 * the table fails the schema build, so none goes undeclared.
 */
export function describeMutationErrors(schema: GraphQLSchema): GraphQLSchema {
  for (const field of Object.values(schema.getMutationType()?.getFields() ?? {})) {
    const codes: readonly string[] | undefined = MUTATION_ERROR_CODES[field.name as MutationName];
    if (!codes) throw new Error(`mutation ${field.name} has no entry in MUTATION_ERROR_CODES (src/graphql/mutation-errors.ts)`);
    field.description = `${field.description ?? ''}${field.description ? ' ' : ''}Error codes: ${codes.join(', ')}.`;
  }
  return schema;
}
