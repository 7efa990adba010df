// Cluster admin URLs given to registerCluster as `connectionUrl` are stored encrypted
// (AES-256-GCM, a fresh nonce each time): the control database alone never reveals them.
// The key is CLUSTER_SECRET_KEY, or a key file Tenantry makes once in TENANTRY_HOME.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

const VERSION = 'v1';
const KEY_FILE = 'cluster-secret.key';

/** The key is missing, malformed, or not the one a sealed URL was made with. */
export class ClusterSecretError extends Error {
  override name = 'ClusterSecretError';
}

function parseKey(text: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (key.length !== 32) throw new ClusterSecretError('CLUSTER_SECRET_KEY must be 32 bytes, as 64 hex characters or base64');
  return key;
}

export class ClusterSecrets {
  private key: Promise<Buffer> | undefined;

  constructor(private readonly p: { secretKey?: string | undefined; home: string }) {}

  /** `v1.<nonce>.<tag>.<ciphertext>`, base64url parts. */
  async seal(url: string): Promise<string> {
    const key = await this.loadKey(true);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    const body = Buffer.concat([cipher.update(url, 'utf8'), cipher.final()]);
    return [VERSION, nonce.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }

  async open(sealed: string): Promise<string> {
    const [version, nonce, tag, body] = sealed.split('.');
    if (version !== VERSION || !nonce || !tag || body === undefined) throw new ClusterSecretError('the stored cluster URL is not in a known sealed format');
    const key = await this.loadKey(false);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new ClusterSecretError('the stored cluster URL cannot be decrypted with this key (CLUSTER_SECRET_KEY or the key file differs from the one it was sealed with)');
    }
  }

  /** Read once (from CLUSTER_SECRET_KEY or the key file) and kept; a failed read is tried again next time. */
  private loadKey(create: boolean): Promise<Buffer> {
    if (this.key) return this.key;
    if (this.p.secretKey !== undefined) return (this.key = Promise.resolve().then(() => parseKey(this.p.secretKey!)));
    const file = path.resolve(this.p.home, KEY_FILE);
    const load = readFile(file, 'utf8').then(parseKey, async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      if (!create) throw new ClusterSecretError(`no cluster secret key: CLUSTER_SECRET_KEY is unset and ${file} does not exist`);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      // 'wx': two replicas racing to make it keep the first one's.
      await writeFile(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      return parseKey(await readFile(file, 'utf8'));
    });
    this.key = load;
    load.catch(() => (this.key = undefined));
    return load;
  }
}
