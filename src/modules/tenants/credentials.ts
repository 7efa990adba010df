import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** 32 URL-safe characters (192 bits): safe to embed in a connection string unescaped. */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 7677, the format of
 * pg_authid.rolpassword). Sending the verifier instead of the password keeps the
 * plaintext out of the server's statement logs.
 */
export function scramSha256Verifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  return verifierFrom(pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256'), salt, iterations);
}

/** The same, with the key derivation (a few milliseconds of CPU) on libuv's thread pool instead of the event loop. */
export async function scramSha256VerifierAsync(password: string, iterations = 4096): Promise<string> {
  const salt = randomBytes(16);
  return verifierFrom(await pbkdf2Async(password.normalize('NFKC'), salt, iterations, 32, 'sha256'), salt, iterations);
}

function verifierFrom(salted: Buffer, salt: Buffer, iterations: number): string {
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** A new password and its SCRAM verifier (the key derivation off the event loop). */
export async function newCredentials(): Promise<{ password: string; verifier: string }> {
  const password = generatePassword();
  return { password, verifier: await scramSha256VerifierAsync(password) };
}
