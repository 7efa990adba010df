import type { Prisma, Tenant } from '../../generated/prisma/client.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsInOrder } from '../../platform/db/rows-in-order.js';
import { UserError } from '../../platform/errors.js';
import type { EventBus } from '../../platform/events/event-bus.js';
import { canSeeTenant, type Viewer } from '../../platform/viewer.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import { announceRevoked, displayPrefix, generateApiKey, hashApiKey, type ApiKey, type ApiKeyRole, type KeyWriter } from './api-keys.js';
import type { ApiKeyAuthenticator } from './key-authenticator.js';

interface CreateApiKeyInput {
  name: string;
  role: ApiKeyRole;
  tenantSlug?: string | null;
  expiresAt?: Date | null;
}

/** Which keys to list: by tenant, and the revoked ones too or not. */
export interface ApiKeyFilter {
  tenantSlug?: string | null;
  includeRevoked?: boolean | null;
}

/** A page of keys, newest first, after/before a keyset cursor [createdAt ISO, id]. */
export interface ApiKeyPage {
  after?: [string, string];
  before?: [string, string];
  limit: number;
  inverted: boolean;
}

/**
 * Keys the caller may list that match the filter: an ADMIN every key; a TENANT_ADMIN the keys
 * it made itself (createdByKeyId, not createdBy, which is an actor string); others none.
 */
function listable(viewer: Viewer, filter: ApiKeyFilter | null | undefined): Prisma.ApiKeyWhereInput {
  return {
    AND: [
      viewer.role === 'ADMIN' ? {} : viewer.role === 'TENANT_ADMIN' ? { createdByKeyId: viewer.keyId } : { id: { in: [] } },
      filter?.tenantSlug ? { tenant: { slug: filter.tenantSlug } } : {},
      filter?.includeRevoked ? {} : { revokedAt: null },
    ],
  };
}

/** Key text in a name would end up in audit actors and logs. */
const KEY_TEXT = /tnry_[0-9a-f]{6}/i;

/**
 * API keys as the API manages them: created (the text shown once, its hash stored), revoked
 * with their descendants, looked up by id. A revocation is heard at once by this process's
 * authenticator and, through the event bus, by every replica.
 */
export class ApiKeys {
  constructor(private readonly p: { db: ControlClient; auth: ApiKeyAuthenticator; events: EventBus }) {}

  /** Keys by id, in the order of `ids` (null where none); whoever asks decides what the caller may see. */
  async keysByIds(ids: readonly string[]): Promise<(ApiKey | null)[]> {
    const rows = await this.p.db.apiKey.findMany({ where: { id: { in: [...ids] } } });
    return rowsInOrder(ids, rows, (r) => r.id);
  }

  /** Newest first (createdAt, then id). */
  listKeys(viewer: Viewer, filter: ApiKeyFilter | null | undefined, page: ApiKeyPage): Promise<ApiKey[]> {
    // Newest first: "after" a cursor is older, "before" it newer; inverted reads from the other end.
    const beyond = ([at, id]: [string, string], op: 'lt' | 'gt'): Prisma.ApiKeyWhereInput => ({
      OR: [{ createdAt: { [op]: new Date(at) } }, { createdAt: new Date(at), id: { [op]: id } }],
    });
    const dir = page.inverted ? 'asc' : 'desc';
    return this.p.db.apiKey.findMany({
      where: { AND: [listable(viewer, filter), page.after ? beyond(page.after, 'lt') : {}, page.before ? beyond(page.before, 'gt') : {}] },
      orderBy: [{ createdAt: dir }, { id: dir }],
      take: page.limit,
    });
  }

  /** How many keys listKeys gives over all its pages. */
  countKeys(viewer: Viewer, filter: ApiKeyFilter | null | undefined): Promise<number> {
    return this.p.db.apiKey.count({ where: listable(viewer, filter) });
  }

  /** Which of these keys have been revoked (live subscriptions opened with them end). */
  async revokedAmong(keyIds: readonly string[]): Promise<string[]> {
    const rows = await this.p.db.apiKey.findMany({ where: { id: { in: [...keyIds] }, revokedAt: { not: null } }, select: { id: true } });
    return rows.map((r) => r.id);
  }

  /**
   * Admins create any key; a TENANT_ADMIN creates keys for its own tenant only, never above
   * its own role, and never outliving itself (its expiry is the default and the latest
   * allowed); such keys are revoked with their creator. The key text is returned here once;
   * only its hash is stored.
   */
  async createApiKey(op: OperationContext, viewer: Viewer, input: CreateApiKeyInput): Promise<{ apiKey: ApiKey; key: string }> {
    const { db } = this.p;
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
    let tenant: Tenant | null = null;
    if (input.role !== 'ADMIN') {
      if (!input.tenantSlug) throw new UserError('INVALID_INPUT', `${input.role} keys need a tenantSlug`, 'tenantSlug');
      tenant = await db.tenant.findUnique({ where: { slug: input.tenantSlug } });
      if (!tenant || tenant.status === 'DEPROVISIONED' || !canSeeTenant(viewer, tenant.id)) {
        throw new UserError('NOT_FOUND', `no tenant ${input.tenantSlug}`, 'tenantSlug');
      }
    }
    const key = generateApiKey();
    const apiKey = await db.$transaction(async (tx) => {
      // The creator's row, locked: a revocation of it either committed before (and this key
      // is refused) or waits for this one (and its cascade finds the new key).
      const [creator] = await tx.$queryRaw<{ revoked_at: Date | null }[]>`SELECT revoked_at FROM api_keys WHERE id = ${viewer.keyId}::uuid FOR UPDATE`;
      if (!creator || creator.revoked_at) throw new UserError('FORBIDDEN', 'the key making this request has been revoked');
      const created = await tx.apiKey.create({
        data: { name, role: input.role, tenantId: tenant?.id ?? null, keyHash: hashApiKey(key), keyPrefix: displayPrefix(key), createdBy: op.actor, createdByKeyId: viewer.keyId, expiresAt },
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

  /**
   * Revokes a key and, when it is a TENANT_ADMIN key, every key it created (and theirs, down
   * the line), in one transaction with an audit event per key; then every replica hears of it.
   * A null id names no key (NOT_FOUND, like a key the caller may not see).
   */
  async revokeApiKey(op: OperationContext, viewer: Viewer, id: string | null): Promise<ApiKey> {
    const { db } = this.p;
    const row = id === null ? null : await db.apiKey.findUnique({ where: { id }, include: { tenant: true } });
    if (!row || !canSeeTenant(viewer, row.tenantId)) throw new UserError('NOT_FOUND', 'no such API key', 'id');
    if (row.revokedAt) return row;
    const { revoked, keyIds } = await db.$transaction(async (tx) => {
      const at = new Date();
      const revoked = await tx.apiKey.update({ where: { id: row.id }, data: { revokedAt: at } });
      const cascaded = await revokeKeysCreatedBy(tx, [revoked], at);
      await recordAuditEvent(tx, op, {
        category: 'security',
        action: 'apikey.revoked',
        tenant: row.tenant,
        subject: row.id,
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
      return { revoked, keyIds: [row.id, ...cascaded.map((k) => k.id)] };
    });
    announceRevoked(this.p, keyIds);
    return revoked;
  }
}

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
