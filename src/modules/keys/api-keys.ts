import { hash, randomBytes } from 'node:crypto';
import type { ApiKey, Prisma } from '../../generated/prisma/client.js';
import { ApiKeyRole } from '../../generated/prisma/enums.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { Viewer } from '../../platform/viewer.js';

export type { ApiKey };
export { ApiKeyRole };

const KEY_PREFIX = 'tnry_';

/** `tnry_` followed by 64 hex characters (256 random bits). */
export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('hex');
}

export function hashApiKey(key: string): string {
  // One-shot (no Hash object): it runs on every request.
  return hash('sha256', key, 'hex');
}

/** The part of a key that is safe to show and log. */
export function displayPrefix(key: string): string {
  return key.slice(0, KEY_PREFIX.length + 6);
}

/** What authentication needs of a key's row (and what the per-process key cache holds). */
export type KeyRecord = Pick<ApiKey, 'id' | 'name' | 'role' | 'tenantId' | 'keyPrefix' | 'expiresAt' | 'revokedAt' | 'lastUsedAt'>;

export type AuthenticationResult = { viewer: Viewer } | { failure: 'UNKNOWN' | 'REVOKED' | 'EXPIRED'; keyId: string | null };

/** The row of a presented key, by its hash (the key itself is never stored nor sent to the database). */
export function findKeyRecord(db: ControlClient, key: string): Promise<KeyRecord | null> {
  return db.apiKey.findUnique({
    where: { keyHash: hashApiKey(key) },
    select: { id: true, name: true, role: true, tenantId: true, keyPrefix: true, expiresAt: true, revokedAt: true, lastUsedAt: true },
  });
}

/** Whether a key's row lets a request in now. */
export function judgeKey(row: KeyRecord | null, now = Date.now()): AuthenticationResult {
  if (!row) return { failure: 'UNKNOWN', keyId: null };
  if (row.revokedAt) return { failure: 'REVOKED', keyId: row.id };
  if (row.expiresAt && row.expiresAt.getTime() <= now) return { failure: 'EXPIRED', keyId: row.id };
  return { viewer: viewerOf(row) };
}

function viewerOf(row: KeyRecord): Viewer {
  return { keyId: row.id, name: row.name, role: row.role, tenantId: row.tenantId, keyPrefix: row.keyPrefix, expiresAt: row.expiresAt };
}

/** Where a revocation must be heard: this process's key cache at once, every replica through the bus. */
export interface RevocationListeners {
  auth: { forget(keyIds: readonly string[]): void };
  events: { publishKeysRevoked(keyIds: string[]): void };
}

/** Tells every replica that keys were revoked. Call it once the revocation has committed. */
export function announceRevoked(listeners: RevocationListeners, keyIds: string[]): void {
  if (!keyIds.length) return;
  listeners.auth.forget(keyIds);
  listeners.events.publishKeysRevoked(keyIds);
}

export type KeyWriter = Pick<ControlClient, 'apiKey'> | Prisma.TransactionClient;

/** Revokes every live key of a tenant (deprovisioning); returns their ids for announceRevoked once committed. */
export async function revokeTenantKeys(tx: KeyWriter, tenantId: string, at = new Date()): Promise<string[]> {
  const keys = await tx.apiKey.findMany({ where: { tenantId, revokedAt: null }, select: { id: true } });
  if (keys.length) await tx.apiKey.updateMany({ where: { id: { in: keys.map((k) => k.id) } }, data: { revokedAt: at } });
  return keys.map((k) => k.id);
}

/**
 * A new ADMIN key made outside the API (`npm run admin-key`, for a lost key): only its
 * hash is stored, with an audit event in the same transaction; the text is returned once.
 */
export async function mintAdminKey(db: ControlClient, op: OperationContext, name: string): Promise<{ apiKey: ApiKey; key: string }> {
  const key = generateApiKey();
  const apiKey = await db.$transaction(async (tx) => {
    const created = await tx.apiKey.create({ data: { name, role: 'ADMIN', keyHash: hashApiKey(key), keyPrefix: displayPrefix(key), createdBy: op.actor } });
    await recordAuditEvent(tx, op, {
      category: 'security',
      action: 'apikey.created',
      subject: created.id,
      metadata: { name, role: 'ADMIN', keyPrefix: created.keyPrefix, expiresAt: null, source: 'npm run admin-key' },
    });
    return created;
  });
  return { apiKey, key };
}

/**
 * At start: make sure an admin can get in. ADMIN_API_KEY is registered (by hash) when
 * given. Otherwise, when no ADMIN key exists yet, a key is generated but NOT stored: the
 * caller shows it, then commits it. A start that fails before showing it (a busy port, a
 * pooler that does not start) leaves no key behind, and the next start generates one again.
 */
export async function bootstrapAdminKey(db: ControlClient, configuredKey: string | undefined): Promise<{ generatedKey: string | null; commit: () => Promise<void> }> {
  const op: OperationContext = { actor: 'system', correlationId: 'startup' };
  const store = (key: string, name: string, source: string) =>
    db.$transaction(async (tx) => {
      await tx.apiKey.create({ data: { name, role: 'ADMIN', keyHash: hashApiKey(key), keyPrefix: displayPrefix(key), createdBy: 'system' } });
      await recordAuditEvent(tx, op, { category: 'security', action: 'apikey.bootstrapped', metadata: { source } });
    });
  if (configuredKey) {
    const existing = await db.apiKey.findUnique({ where: { keyHash: hashApiKey(configuredKey) } });
    if (!existing) await store(configuredKey, 'ADMIN_API_KEY', 'ADMIN_API_KEY');
    return { generatedKey: null, commit: async () => {} };
  }
  const anyAdmin = await db.apiKey.findFirst({ where: { role: 'ADMIN' } });
  if (anyAdmin) return { generatedKey: null, commit: async () => {} };
  const key = generateApiKey();
  return { generatedKey: key, commit: () => store(key, 'first-start admin', 'generated') };
}
