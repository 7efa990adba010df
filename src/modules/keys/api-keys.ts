import { createHash, randomBytes } from 'node:crypto';
import type { ApiKey, Prisma } from '../../generated/prisma/client.js';
import type { ApiKeyRole } from '../../generated/prisma/enums.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { EventBus } from '../../platform/events/event-bus.js';
import { UserError } from '../../platform/errors.js';
import type { Viewer } from '../../platform/viewer.js';

const KEY_PREFIX = 'tnry_';

/** `tnry_` followed by 64 hex characters (256 random bits). */
export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('hex');
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
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

export interface CreateApiKeyInput {
  name: string;
  role: ApiKeyRole;
  tenantSlug?: string | null;
  expiresAt?: Date | null;
}

/** Key text in a name would end up in audit actors and logs. */
const KEY_TEXT = /tnry_[0-9a-f]{6}/i;

/**
 * Admins create any key; a TENANT_ADMIN creates keys for its own tenant only, never above
 * its own role, and never outliving itself (its expiry is the default and the latest
 * allowed); such keys are revoked with their creator. The key text is returned here once;
 * only its hash is stored.
 */
export async function createApiKey(db: ControlClient, op: OperationContext, viewer: Viewer, input: CreateApiKeyInput): Promise<{ apiKey: ApiKey; key: string }> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > 100) throw new UserError('INVALID_INPUT', 'name must be 1 to 100 characters', 'name');
  if (KEY_TEXT.test(name)) throw new UserError('INVALID_INPUT', 'name must not contain key text ("tnry_…")', 'name');
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) throw new UserError('INVALID_INPUT', 'expiresAt must be in the future', 'expiresAt');
  if (input.role === 'ADMIN') {
    if (viewer.role !== 'ADMIN') throw new UserError('FORBIDDEN', 'only an ADMIN key can create ADMIN keys', 'role');
    if (input.tenantSlug) throw new UserError('INVALID_INPUT', 'ADMIN keys are not tied to a tenant: leave tenantSlug out', 'tenantSlug');
  }
  let expiresAt = input.expiresAt ?? null;
  if (viewer.role !== 'ADMIN' && viewer.expiresAt) {
    if (expiresAt && expiresAt.getTime() > viewer.expiresAt.getTime()) {
      throw new UserError('INVALID_INPUT', `a key cannot outlive the key that creates it (which expires at ${viewer.expiresAt.toISOString()})`, 'expiresAt');
    }
    expiresAt ??= viewer.expiresAt;
  }
  let tenantId: string | null = null;
  let tenant: { id: string; slug: string } | null = null;
  if (input.role !== 'ADMIN') {
    if (!input.tenantSlug) throw new UserError('INVALID_INPUT', `${input.role} keys need a tenantSlug`, 'tenantSlug');
    const t = await db.tenant.findUnique({ where: { slug: input.tenantSlug } });
    if (!t || t.status === 'DEPROVISIONED' || (viewer.role !== 'ADMIN' && viewer.tenantId !== t.id)) {
      throw new UserError('NOT_FOUND', `no tenant ${input.tenantSlug}`, 'tenantSlug');
    }
    tenantId = t.id;
    tenant = t;
  }
  const key = generateApiKey();
  const apiKey = await db.$transaction(async (tx) => {
    // The creator's row, locked: a revocation of it either committed before (and this key
    // is refused) or waits for this one (and its cascade finds the new key).
    const [creator] = await tx.$queryRaw<{ revoked_at: Date | null }[]>`SELECT revoked_at FROM api_keys WHERE id = ${viewer.keyId}::uuid FOR UPDATE`;
    if (!creator || creator.revoked_at) throw new UserError('FORBIDDEN', 'the key making this request has been revoked');
    const created = await tx.apiKey.create({
      data: { name, role: input.role, tenantId, keyHash: hashApiKey(key), keyPrefix: displayPrefix(key), createdBy: op.actor, createdByKeyId: viewer.keyId, expiresAt },
    });
    await recordAuditEvent(tx, op, {
      category: 'security',
      action: 'apikey.created',
      tenant,
      subject: created.id,
      metadata: { name, role: input.role, keyPrefix: created.keyPrefix, expiresAt: expiresAt?.toISOString() ?? null, createdByKeyId: viewer.keyId },
    });
    return created;
  });
  return { apiKey, key };
}

/** Where a revocation must be heard: this process's key cache at once, every replica through the bus. */
export interface RevocationListeners {
  auth: { forget(keyIds: readonly string[]): void };
  events: { publishKeysRevoked(keyIds: string[]): void };
}

/** Tells every replica that keys were revoked. Call it once the revocation has committed. */
export function announceRevoked(deps: RevocationListeners, keyIds: string[]): void {
  if (!keyIds.length) return;
  deps.auth.forget(keyIds);
  deps.events.publishKeysRevoked(keyIds);
}

/**
 * Revokes a key and, when it is a TENANT_ADMIN key, every key it created (and theirs, down
 * the line), in one transaction with an audit event per key; then every replica hears of it.
 */
export async function revokeApiKey(deps: { db: ControlClient } & RevocationListeners, op: OperationContext, viewer: Viewer, id: string): Promise<ApiKey> {
  const { db } = deps;
  const row = await db.apiKey.findUnique({ where: { id }, include: { tenant: true } });
  const visible = row && (viewer.role === 'ADMIN' || (row.tenantId !== null && row.tenantId === viewer.tenantId));
  if (!row || !visible) throw new UserError('NOT_FOUND', 'no such API key', 'id');
  if (row.revokedAt) return row;
  const { revoked, keyIds } = await db.$transaction(async (tx) => {
    const at = new Date();
    const revoked = await tx.apiKey.update({ where: { id }, data: { revokedAt: at } });
    const cascaded = await revokeKeysCreatedBy(tx, [revoked], at);
    await recordAuditEvent(tx, op, {
      category: 'security',
      action: 'apikey.revoked',
      tenant: row.tenant,
      subject: id,
      metadata: { name: row.name, keyPrefix: row.keyPrefix, alsoRevoked: cascaded.map((k) => k.id) },
    });
    for (const k of cascaded) {
      await recordAuditEvent(tx, op, {
        category: 'security',
        action: 'apikey.revoked',
        tenant: row.tenant && k.tenantId === row.tenant.id ? row.tenant : null,
        subject: k.id,
        metadata: { name: k.name, keyPrefix: k.keyPrefix, withCreator: k.createdByKeyId },
      });
    }
    return { revoked, keyIds: [id, ...cascaded.map((k) => k.id)] };
  });
  announceRevoked(deps, keyIds);
  return revoked;
}

type KeyWriter = Pick<ControlClient, 'apiKey'> | Prisma.TransactionClient;

/** The live keys created by the given TENANT_ADMIN keys, and by those, revoked at `at`. */
async function revokeKeysCreatedBy(tx: KeyWriter, parents: Pick<ApiKey, 'id' | 'role'>[], at: Date): Promise<ApiKey[]> {
  const revoked: ApiKey[] = [];
  let frontier = parents.filter((p) => p.role === 'TENANT_ADMIN').map((p) => p.id);
  while (frontier.length) {
    const children = await tx.apiKey.findMany({ where: { createdByKeyId: { in: frontier }, revokedAt: null } });
    if (!children.length) break;
    await tx.apiKey.updateMany({ where: { id: { in: children.map((c) => c.id) } }, data: { revokedAt: at } });
    revoked.push(...children);
    frontier = children.filter((c) => c.role === 'TENANT_ADMIN').map((c) => c.id);
  }
  return revoked;
}

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
