import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { Prisma } from '../../generated/prisma/client.js';
import type { CredentialPurpose } from '../../generated/prisma/enums.js';
import type { Config } from '../../platform/config.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { UserError } from '../../platform/errors.js';

/**
 * Credentials a caller can fetch again. Provisioning and rotation take an optional
 * idempotency key; with one, the new password is kept for CREDENTIAL_HANDOFF_TTL_MS,
 * encrypted (AES-256-GCM) under a key derived from the idempotency key with HKDF. Only the
 * key's SHA-256 is stored, so the control database alone cannot decrypt it: whoever holds
 * the idempotency key (the caller) can, by repeating the call.
 */
type SealedPassword = ReturnType<typeof sealPassword>;

const bytes = (b: Buffer): Uint8Array<ArrayBuffer> => new Uint8Array(b);

const INFO = 'tenantry credential hand-off v1';

function idempotencyKeyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function derive(key: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, INFO, 32));
}

function sealPassword(password: string, key: string) {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', derive(key, salt), iv);
  const ciphertext = Buffer.concat([cipher.update(password, 'utf8'), cipher.final()]);
  return { salt: bytes(salt), iv: bytes(iv), ciphertext: bytes(ciphertext), authTag: bytes(cipher.getAuthTag()) };
}

function openPassword(sealed: SealedPassword, key: string): string {
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

export interface Handoff {
  id: string;
  purpose: CredentialPurpose;
  /** Still to be set on the role (null once applied). */
  verifier: string | null;
  password: string;
}

/** The hand-offs (above) as the control database keeps them, for CREDENTIAL_HANDOFF_TTL_MS. */
export class CredentialHandoffs {
  constructor(private readonly p: { db: ControlClient; config: Pick<Config, 'CREDENTIAL_HANDOFF_TTL_MS'> }) {}

  /** Keeps a new password for the caller (inside the caller's transaction), with the verifier still to apply. */
  async storeHandoff(tx: Prisma.TransactionClient, p: { tenantId: string; purpose: CredentialPurpose; key: string; password: string; verifier: string }): Promise<void> {
    const keyHash = idempotencyKeyHash(p.key);
    const expiresAt = new Date(Date.now() + this.p.config.CREDENTIAL_HANDOFF_TTL_MS);
    const kept = { purpose: p.purpose, verifier: p.verifier, ...sealPassword(p.password, p.key), expiresAt };
    await tx.credentialHandoff.upsert({
      where: { tenantId_keyHash: { tenantId: p.tenantId, keyHash } },
      create: { tenantId: p.tenantId, keyHash, ...kept },
      update: { ...kept, appliedAt: null },
    });
  }

  /** The credentials kept for this tenant and idempotency key, if any and not expired. */
  async findHandoff(tenantId: string, key: string): Promise<Handoff | null> {
    const row = await this.p.db.credentialHandoff.findUnique({ where: { tenantId_keyHash: { tenantId, keyHash: idempotencyKeyHash(key) } } });
    if (!row || row.expiresAt.getTime() <= Date.now()) return null;
    return { id: row.id, purpose: row.purpose, verifier: row.verifier, password: openPassword(row, key) };
  }
}
