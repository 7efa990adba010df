import { createHash, randomBytes } from 'node:crypto';
import type { ApiKey } from '../../generated/prisma/client.js';
import type { ApiKeyRole } from '../../generated/prisma/enums.js';
import type { ControlClient } from '../../db/control-client.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import { UserError } from '../errors.js';
import type { Viewer } from './viewer.js';

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

export type AuthenticationResult = { viewer: Viewer } | { failure: 'UNKNOWN' | 'REVOKED' | 'EXPIRED' };

export async function authenticate(db: ControlClient, key: string): Promise<AuthenticationResult> {
  const row = await db.apiKey.findUnique({ where: { keyHash: hashApiKey(key) } });
  if (!row) return { failure: 'UNKNOWN' };
  if (row.revokedAt) return { failure: 'REVOKED' };
  if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) return { failure: 'EXPIRED' };
  // Recording use costs a write, so it is kept to once a minute per key.
  if (!row.lastUsedAt || Date.now() - row.lastUsedAt.getTime() > 60_000) {
    await db.apiKey.update({ where: { id: row.id }, data: { lastUsedAt: new Date() } });
  }
  return { viewer: viewerOf(row) };
}

function viewerOf(row: ApiKey): Viewer {
  return { keyId: row.id, name: row.name, role: row.role, tenantId: row.tenantId, keyPrefix: row.keyPrefix, expiresAt: row.expiresAt };
}

export interface CreateApiKeyInput {
  name: string;
  role: ApiKeyRole;
  tenantSlug?: string | null;
  expiresAt?: Date | null;
}

/**
 * Admins create any key; a TENANT_ADMIN creates keys for its own tenant only. The key
 * text is returned here once; only its hash is stored.
 */
export async function createApiKey(db: ControlClient, op: OperationContext, viewer: Viewer, input: CreateApiKeyInput): Promise<{ apiKey: ApiKey; key: string }> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > 100) throw new UserError('INVALID_INPUT', 'name must be 1 to 100 characters', 'name');
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) throw new UserError('INVALID_INPUT', 'expiresAt must be in the future', 'expiresAt');
  if (input.role === 'ADMIN') {
    if (viewer.role !== 'ADMIN') throw new UserError('FORBIDDEN', 'only an ADMIN key can create ADMIN keys', 'role');
    if (input.tenantSlug) throw new UserError('INVALID_INPUT', 'ADMIN keys are not tied to a tenant: leave tenantSlug out', 'tenantSlug');
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
    const created = await tx.apiKey.create({
      data: { name, role: input.role, tenantId, keyHash: hashApiKey(key), keyPrefix: displayPrefix(key), createdBy: op.actor, expiresAt: input.expiresAt ?? null },
    });
    await recordAuditEvent(tx, op, {
      category: 'security',
      action: 'apikey.created',
      tenant,
      subject: created.id,
      metadata: { name, role: input.role, keyPrefix: created.keyPrefix, expiresAt: input.expiresAt?.toISOString() ?? null },
    });
    return created;
  });
  return { apiKey, key };
}

export async function revokeApiKey(db: ControlClient, op: OperationContext, viewer: Viewer, id: string): Promise<ApiKey> {
  const row = await db.apiKey.findUnique({ where: { id }, include: { tenant: true } });
  const visible = row && (viewer.role === 'ADMIN' || (row.tenantId !== null && row.tenantId === viewer.tenantId));
  if (!row || !visible) throw new UserError('NOT_FOUND', 'no such API key', 'id');
  if (row.revokedAt) return row;
  return db.$transaction(async (tx) => {
    const revoked = await tx.apiKey.update({ where: { id }, data: { revokedAt: new Date() } });
    await recordAuditEvent(tx, op, {
      category: 'security',
      action: 'apikey.revoked',
      tenant: row.tenant,
      subject: id,
      metadata: { name: row.name, keyPrefix: row.keyPrefix },
    });
    return revoked;
  });
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
 * given; otherwise, on the very first start, a key is generated and returned to be shown once.
 */
export async function bootstrapAdminKey(db: ControlClient, configuredKey: string | undefined): Promise<{ generatedKey: string | null }> {
  const op: OperationContext = { actor: 'system', correlationId: 'startup' };
  if (configuredKey) {
    const keyHash = hashApiKey(configuredKey);
    const existing = await db.apiKey.findUnique({ where: { keyHash } });
    if (!existing) {
      await db.apiKey.create({ data: { name: 'ADMIN_API_KEY', role: 'ADMIN', keyHash, keyPrefix: displayPrefix(configuredKey), createdBy: 'system' } });
      await recordAuditEvent(db, op, { category: 'security', action: 'apikey.bootstrapped', metadata: { source: 'ADMIN_API_KEY' } });
    }
    return { generatedKey: null };
  }
  const anyAdmin = await db.apiKey.findFirst({ where: { role: 'ADMIN' } });
  if (anyAdmin) return { generatedKey: null };
  const key = generateApiKey();
  await db.apiKey.create({ data: { name: 'first-start admin', role: 'ADMIN', keyHash: hashApiKey(key), keyPrefix: displayPrefix(key), createdBy: 'system' } });
  await recordAuditEvent(db, op, { category: 'security', action: 'apikey.bootstrapped', metadata: { source: 'generated' } });
  return { generatedKey: key };
}
