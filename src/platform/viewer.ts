import type { ApiKeyRole } from '../generated/prisma/enums.js';

/** Who is calling: the API key a request presented. */
export interface Viewer {
  keyId: string;
  name: string;
  role: ApiKeyRole;
  /** The one tenant a TENANT_* key may see; null for ADMIN keys. */
  tenantId: string | null;
  keyPrefix: string;
  expiresAt: Date | null;
}

/**
 * How the caller is named in audit events and quota history: the key's name and id, never
 * any character of the key itself (not even its prefix).
 */
export function actorOf(viewer: Viewer | null): string {
  return viewer ? `${viewer.name} (apikey:${viewer.keyId})` : 'system';
}

/** A Prisma `where` on tenants that keeps only what the viewer may see. */
export function visibleTenants(viewer: Viewer): { id?: string } {
  return viewer.role === 'ADMIN' ? {} : { id: viewer.tenantId ?? '00000000-0000-0000-0000-000000000000' };
}

export function canSeeTenant(viewer: Viewer, tenantId: string | null | undefined): boolean {
  return viewer.role === 'ADMIN' || (tenantId != null && viewer.tenantId === tenantId);
}
