import { LRUCache } from 'lru-cache';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { ControlClient } from '../../platform/db/control-client.js';
import type { Failpoints } from '../../platform/failpoints.js';
import type { Logger } from '../../platform/logger.js';
import { recordAuditEvent } from '../audit/index.js';
import type { EventBus } from '../../platform/events/event-bus.js';
import { findKeyRecord, hashApiKey, judgeKey, type KeyRecord } from './api-keys.js';
import type { Viewer } from '../../platform/viewer.js';

/** How a request reached Tenantry (recorded with failed authentications). */
export type Transport = 'http' | 'sse' | 'graphql-ws' | 'internal-http';

export type AuthFailure = 'MISSING' | 'MALFORMED' | 'PLACEHOLDER' | 'UNKNOWN' | 'REVOKED' | 'EXPIRED';

export interface Credentials {
  /** "Bearer <key>": a header, or graphql-ws connection params. */
  authorization: string | null;
  sourceAddress: string;
  transport: Transport;
  correlationId: string;
}

export type Identity = { viewer: Viewer; authFailure: null } | { viewer: null; authFailure: AuthFailure };

/** The source address failed to authenticate too often: it is refused until the window ends. */
export class RateLimitedError extends Error {
  constructor(
    readonly retryAfterSeconds: number,
    readonly limit: number,
    readonly windowSeconds: number,
  ) {
    super(`too many failed authentications from this address (${limit} per ${windowSeconds} s: AUTH_FAILURE_LIMIT); retry in ${retryAfterSeconds} s`);
    this.name = 'RateLimitedError';
  }
}

/** Use is recorded in the control database at most this often per key and process. */
const LAST_USED_EVERY_MS = 60_000;

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const PLACEHOLDER = /^Bearer\s+<[^>]*>\s*$/i;

/**
 * Turns the key a request presents into a viewer. Keys that authenticated are remembered
 * for `cacheMs` by their hash (so a request costs no control-database read), and dropped at
 * once when any replica revokes them (`keys:revoked` on the event bus). Failed attempts are
 * logged and audited without the key text, and counted per source address: past
 * `failureLimit` in `failureWindowMs` the address gets RATE_LIMITED for the rest of the window,
 * whatever key it sends (so the limit cannot be used to test keys).
 */
export class ApiKeyAuthenticator {
  private readonly cache: LRUCache<string, KeyRecord> | null;
  /** key id → hash, to drop revoked keys from the cache. */
  private readonly hashes = new Map<string, string>();
  private readonly failures: RateLimiterMemory;
  private readonly lastUseWritten = new Map<string, number>();
  private revocations: AsyncIterator<{ keyIds: string[] }> | undefined;
  /** Bumped by every revocation heard: a lookup that overlapped one does not cache what it read. */
  private revocationEpoch = 0;

  constructor(
    private readonly p: {
      db: ControlClient;
      events: EventBus;
      logger: Logger;
      cacheMs: number;
      failureLimit: number;
      failureWindowMs: number;
      /** `auth.before` is hit before each authentication (a test makes it throw to see what a caller gets). */
      failpoints: Failpoints;
    },
  ) {
    this.cache =
      p.cacheMs > 0
        ? new LRUCache<string, KeyRecord>({ max: 10_000, ttl: p.cacheMs, dispose: (row) => this.hashes.delete(row.id) })
        : null;
    this.failures = new RateLimiterMemory({ keyPrefix: 'auth-failures', points: p.failureLimit, duration: Math.max(1, Math.ceil(p.failureWindowMs / 1000)) });
  }

  /** Listens for revocations made anywhere (through Redis when replicas share it). */
  start(): void {
    const iterator = this.p.events.keysRevoked()[Symbol.asyncIterator]();
    this.revocations = iterator;
    void (async () => {
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) this.forget(next.value.keyIds);
    })().catch((err) => this.p.logger.error({ err }, 'key revocation listener stopped'));
  }

  async close(): Promise<void> {
    await this.revocations?.return?.();
    this.cache?.clear();
  }

  /** Drops keys from this process's cache (their next use reads the control database). */
  forget(keyIds: readonly string[]): void {
    this.revocationEpoch++;
    for (const id of keyIds) {
      const hash = this.hashes.get(id);
      if (hash) this.cache?.delete(hash);
      this.hashes.delete(id);
    }
  }

  async authenticate(c: Credentials): Promise<Identity> {
    await this.p.failpoints.hit('auth.before');
    if (!c.authorization) return { viewer: null, authFailure: 'MISSING' };
    // GraphiQL's starter header sent unchanged ("Bearer <paste your admin key>"): guidance, not an attempt.
    if (PLACEHOLDER.test(c.authorization)) return { viewer: null, authFailure: 'PLACEHOLDER' };
    const blocked = await this.failures.get(c.sourceAddress);
    if (blocked && blocked.consumedPoints >= this.p.failureLimit) {
      this.p.logger.debug({ sourceAddress: c.sourceAddress, transport: c.transport, correlationId: c.correlationId }, 'authentication refused: rate limited');
      throw this.rateLimited(blocked.msBeforeNext);
    }
    const match = BEARER.exec(c.authorization);
    if (!match) return this.failed(c, 'MALFORMED', null);
    const hash = hashApiKey(match[1]!);
    let row = this.cache?.get(hash);
    if (!row) {
      const epoch = this.revocationEpoch;
      const found = await findKeyRecord(this.p.db, match[1]!);
      const judged = judgeKey(found);
      if ('failure' in judged) return this.failed(c, judged.failure, judged.keyId);
      row = found!;
      if (this.cache && epoch === this.revocationEpoch) {
        this.cache.set(hash, row);
        this.hashes.set(row.id, hash);
      }
    }
    const judged = judgeKey(row);
    if ('failure' in judged) {
      // Cached, and has expired since.
      this.forget([row.id]);
      return this.failed(c, judged.failure, judged.keyId);
    }
    await this.recordUse(row);
    return { viewer: judged.viewer, authFailure: null };
  }

  /** Writes last_used_at at most once a minute per key (and process), whatever the traffic. */
  private async recordUse(row: KeyRecord): Promise<void> {
    const now = Date.now();
    const written = Math.max(this.lastUseWritten.get(row.id) ?? 0, row.lastUsedAt?.getTime() ?? 0);
    if (now - written < LAST_USED_EVERY_MS) return;
    this.lastUseWritten.set(row.id, now);
    await this.p.db.apiKey.update({ where: { id: row.id }, data: { lastUsedAt: new Date(now) } }).catch((err: Error) => {
      this.p.logger.warn({ err, keyId: row.id }, 'recording key use failed');
    });
  }

  private async failed(c: Credentials, reason: Exclude<AuthFailure, 'MISSING'>, keyId: string | null): Promise<Identity> {
    const consumed = await this.failures.consume(c.sourceAddress).then(
      (r) => r.consumedPoints,
      (r: { consumedPoints?: number }) => r.consumedPoints ?? this.p.failureLimit + 1,
    );
    const facts = { reason, sourceAddress: c.sourceAddress, transport: c.transport, keyId };
    this.p.logger.warn({ ...facts, correlationId: c.correlationId }, 'authentication failed');
    const op = { actor: 'anonymous', correlationId: c.correlationId };
    try {
      await recordAuditEvent(this.p.db, op, { category: 'security', action: 'auth.failed', subject: keyId, metadata: facts });
      if (consumed === this.p.failureLimit) {
        const windowSeconds = Math.ceil(this.p.failureWindowMs / 1000);
        this.p.logger.warn({ sourceAddress: c.sourceAddress, limit: this.p.failureLimit, windowSeconds }, 'source address rate limited');
        await recordAuditEvent(this.p.db, op, {
          category: 'security',
          action: 'auth.rate_limited',
          metadata: { sourceAddress: c.sourceAddress, transport: c.transport, failures: consumed, windowSeconds },
        });
      }
    } catch (err) {
      this.p.logger.error({ err, correlationId: c.correlationId }, 'auditing a failed authentication failed');
    }
    return { viewer: null, authFailure: reason };
  }

  private rateLimited(msBeforeNext: number): RateLimitedError {
    return new RateLimitedError(Math.max(1, Math.ceil(msBeforeNext / 1000)), this.p.failureLimit, Math.ceil(this.p.failureWindowMs / 1000));
  }
}
