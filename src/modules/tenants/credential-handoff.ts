import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { Prisma } from '../../generated/prisma/client.js';
import type { CredentialPurpose } from '../../generated/prisma/enums.js';
import type { Deps } from '../../deps.js';
import { UserError } from '../../platform/errors.js';

/**
 * Credentials a caller can fetch again. Provisioning and rotation take an optional
 * idempotency key; with one, the new password is kept for CREDENTIAL_HANDOFF_TTL_MS,
 * encrypted (AES-256-GCM) under a key derived from the idempotency key with HKDF. Only the
 * key's SHA-256 is stored, so the control database alone cannot decrypt it: whoever holds
 * the idempotency key (the caller) can, by repeating the call.
 */
export interface SealedPassword {
  salt: Uint8Array<ArrayBuffer>;
  iv: Uint8Array<ArrayBuffer>;
  ciphertext: Uint8Array<ArrayBuffer>;
  authTag: Uint8Array<ArrayBuffer>;
}

const bytes = (b: Buffer): Uint8Array<ArrayBuffer> => new Uint8Array(b);

const INFO = 'tenantry credential hand-off v1';

export function idempotencyKeyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function derive(key: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, INFO, 32));
}

export function sealPassword(password: string, key: string): SealedPassword {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', derive(key, salt), iv);
  const ciphertext = Buffer.concat([cipher.update(password, 'utf8'), cipher.final()]);
  return { salt: bytes(salt), iv: bytes(iv), ciphertext: bytes(ciphertext), authTag: bytes(cipher.getAuthTag()) };
}

export function openPassword(sealed: SealedPassword, key: string): string {
  const decipher = createDecipheriv('aes-256-gcm', derive(key, Buffer.from(sealed.salt)), Buffer.from(sealed.iv));
  decipher.setAuthTag(Buffer.from(sealed.authTag));
  return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext)), decipher.final()]).toString('utf8');
}

/** 16 to 200 printable ASCII characters: a UUID or any random token the caller keeps. */
export function validateIdempotencyKey(key: string | null | undefined): string | null {
  if (key == null) return null;
  if (!/^[\x21-\x7e]{16,200}$/.test(key)) {
    throw new UserError('INVALID_INPUT', 'idempotencyKey must be 16 to 200 printable ASCII characters without spaces (a UUID will do)', 'idempotencyKey');
  }
  return key;
}

type Tx = Prisma.TransactionClient;

/** Keeps a new password for the caller (inside the caller's transaction), with the verifier still to apply. */
export async function storeHandoff(
  tx: Tx,
  deps: Deps,
  p: { tenantId: string; purpose: CredentialPurpose; key: string; password: string; verifier: string },
): Promise<void> {
  const sealed = sealPassword(p.password, p.key);
  await tx.credentialHandoff.upsert({
    where: { tenantId_keyHash: { tenantId: p.tenantId, keyHash: idempotencyKeyHash(p.key) } },
    create: {
      tenantId: p.tenantId,
      purpose: p.purpose,
      keyHash: idempotencyKeyHash(p.key),
      verifier: p.verifier,
      ...sealed,
      expiresAt: new Date(Date.now() + deps.config.CREDENTIAL_HANDOFF_TTL_MS),
    },
    update: { purpose: p.purpose, verifier: p.verifier, ...sealed, appliedAt: null, expiresAt: new Date(Date.now() + deps.config.CREDENTIAL_HANDOFF_TTL_MS) },
  });
}

export interface Handoff {
  id: string;
  purpose: CredentialPurpose;
  /** Still to be set on the role (null once applied). */
  verifier: string | null;
  password: string;
}

/** The credentials kept for this tenant and idempotency key, if any and not expired. */
export async function findHandoff(deps: Deps, tenantId: string, key: string): Promise<Handoff | null> {
  const row = await deps.db.credentialHandoff.findUnique({ where: { tenantId_keyHash: { tenantId, keyHash: idempotencyKeyHash(key) } } });
  if (!row || row.expiresAt.getTime() <= Date.now()) return null;
  return { id: row.id, purpose: row.purpose, verifier: row.verifier, password: openPassword(row, key) };
}
