import type { ServerResponse } from 'node:http';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Deps } from '../deps.js';
import type { Viewer } from '../platform/viewer.js';
import type { WatchOptions } from '../modules/usage/usage-service.js';
import { SubscriptionEndedError, type SubscriptionEndCode } from '../platform/streams/subscriber-queue.js';

/**
 * How a live session ends: a code the subscriber hears (the stream is over), or this server
 * going away (`shutdown`): the stream is not over, so it is not completed; its transport is
 * closed under it and the client reconnects and subscribes again, here once restarted or
 * on another replica.
 */
export type EndReason = { code: SubscriptionEndCode; message: string } | 'shutdown';

/** WebSocket close codes (documented in the README, "Live usage"; shutting down: 1001, going away). */
export const CLOSE_TOO_SLOW = 1013;
export const CLOSE_FORBIDDEN = 4403;

/** Where a subscription's bytes go: closing it is how a stuck subscriber is let go. */
export interface Transport {
  /**
   * The server ended the subscription for `reason`; its error result is on its way unless
   * the transport is stuck, which `finished` tells (false until the reader took the end).
   */
  ended(reason: Exclude<EndReason, 'shutdown'>, finished: () => boolean): void;
  /** The server is going away: close the transport without completing the stream (SSE: end the response). */
  goingAway(): void;
}

/** How long an ended subscription may take to send its last message before its transport is cut. */
export const GRACE_MS = 5000;
/** Revocations travel on the bus; this re-check covers a message lost on the way (Redis down). */
const RECHECK_MS = 30_000;
/** setTimeout's longest delay; later expiries re-arm. */
const MAX_DELAY = 2 ** 31 - 1;

/** Each subscription's handle, by its GraphQL context (one context per subscription on both transports). */
const handles = new WeakMap<object, LiveSubscription>();

/**
 * For subscription resolvers: ends the subscription of this context at once (its source
 * dropped it as too slow); the transport is told, so a stuck socket is closed now.
 */
export function endSubscription(context: object, reason: Exclude<EndReason, 'shutdown'>): void {
  handles.get(context)?.end(reason);
}

/** For usage subscriptions: a subscriber that falls too far behind is ended at once (on graphql-ws its socket closes with 1013). */
export function dropWhenTooSlow(ctx: { deps: Pick<Deps, 'config'> }): WatchOptions {
  return { onOverflow: () => endSubscription(ctx, { code: 'SUBSCRIBER_TOO_SLOW', message: `it fell ${ctx.deps.config.USAGE_SUBSCRIBER_QUEUE} samples behind` }) };
}

interface Session {
  keyId: string | null;
  /** A subscription, or a graphql-ws socket (counted apart: only subscriptions are metered). */
  kind: 'subscription' | 'socket';
  end(reason: EndReason): void;
}

/**
 * The open subscriptions and graphql-ws sockets of this replica, each bound to the API key
 * that opened it. A key revoked anywhere (bus: keysRevoked) or reaching its expiresAt ends
 * them within seconds; a subscriber that falls behind ends alone. Shutting down completes
 * nothing: the streams are cut at their transport, so clients subscribe again.
 */
export class LiveSessions {
  private readonly byKey = new Map<string, Set<Session>>();
  private readonly sessions = new Set<Session>();
  private readonly transports = new WeakMap<object, Transport>();
  private revocations: AsyncIterator<{ keyIds: string[] }> | undefined;
  private recheck: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'events' | 'logger' | 'metrics'>,
    /** An SSE response turned into a subscription stream (it no longer counts as a request under way). */
    private readonly onStream: (res: ServerResponse) => void = () => {},
  ) {}

  start(): void {
    const revocations = this.deps.events.keysRevoked()[Symbol.asyncIterator]();
    this.revocations = revocations;
    void (async () => {
      for (let next = await revocations.next(); !next.done; next = await revocations.next()) this.endKeys(next.value.keyIds, 'KEY_REVOKED');
    })().catch((err) => this.deps.logger.error({ err }, 'key revocations: listener stopped'));
    this.recheck = setInterval(() => void this.recheckKeys(), RECHECK_MS);
    this.recheck.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.recheck);
    await this.revocations?.return?.();
  }

  /** Binds something live to the key that opened it; returns how to unbind it once it is over. */
  open(viewer: Viewer | null, kind: Session['kind'], end: (reason: EndReason) => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    const session: Session = {
      keyId: viewer?.keyId ?? null,
      kind,
      end: (reason) => {
        close();
        end(reason);
      },
    };
    const close = () => {
      clearTimeout(timer);
      this.sessions.delete(session);
      if (session.keyId) {
        const set = this.byKey.get(session.keyId);
        set?.delete(session);
        if (set?.size === 0) this.byKey.delete(session.keyId);
      }
    };
    this.sessions.add(session);
    if (session.keyId) {
      const set = this.byKey.get(session.keyId) ?? new Set();
      this.byKey.set(session.keyId, set);
      set.add(session);
    }
    const expiresAt = viewer?.expiresAt?.getTime();
    if (expiresAt !== undefined) {
      const arm = () => {
        const left = expiresAt - Date.now();
        if (left > 0) {
          timer = setTimeout(arm, Math.min(left, MAX_DELAY));
          timer.unref();
          return;
        }
        // Everything of the key ends together, as on revocation (subscriptions, then their socket).
        this.endKeys([session.keyId!], 'KEY_EXPIRED');
      };
      arm();
    }
    return close;
  }

  /** Ends what these keys opened, here; publishKeysRevoked reaches every replica. */
  endKeys(keyIds: readonly string[], code: 'KEY_REVOKED' | 'KEY_EXPIRED'): void {
    for (const keyId of keyIds) {
      for (const session of [...(this.byKey.get(keyId) ?? [])]) {
        if (session.kind === 'subscription') this.deps.metrics.subscribersDropped.inc({ reason: code });
        session.end({ code, message: code === 'KEY_REVOKED' ? 'the API key was revoked' : 'the API key expired' });
      }
    }
  }

  /**
   * Shutting down: no subscription completes. Each stops producing and its transport is
   * closed (SSE responses end without a `complete` event; graphql-ws sockets are closed
   * with 1001 by their server), so clients see a lost connection and resubscribe.
   */
  leaveAll(): void {
    for (const session of [...this.sessions]) session.end('shutdown');
  }

  get size(): number {
    return this.sessions.size;
  }

  /** What it holds (for tests and diagnostics): both return to zero once every subscriber left. */
  counts(): { sessions: number; keys: number } {
    return { sessions: this.sessions.size, keys: this.byKey.size };
  }

  /** The transport of a subscription whose context was built outside yoga (graphql-ws). */
  setTransport(context: object, transport: Transport): void {
    this.transports.set(context, transport);
  }

  /** Every subscription result goes through a LiveSubscription, bound to its key. */
  plugin(): Plugin {
    return {
      onSubscribe: ({ args }) => {
        const context = args.contextValue as { viewer?: Viewer | null; res?: ServerResponse };
        const transport = this.transports.get(context) ?? sseTransport(context.res);
        const handle = new LiveSubscription(transport);
        handles.set(context, handle);
        return {
          onSubscribeResult: ({ result, setResult }) => {
            if (!isAsyncIterable(result)) return;
            if (context.res) this.onStream(context.res);
            handle.attach(result as AsyncIterable<ExecutionResult>, this.open(context.viewer ?? null, 'subscription', (reason) => handle.end(reason)));
            setResult(handle);
          },
        };
      },
    };
  }

  private async recheckKeys(): Promise<void> {
    if (this.byKey.size === 0) return;
    try {
      const gone = await this.deps.db.apiKey.findMany({ where: { id: { in: [...this.byKey.keys()] }, revokedAt: { not: null } }, select: { id: true } });
      this.endKeys(gone.map((k) => k.id), 'KEY_REVOKED');
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not re-check the keys of open subscriptions');
    }
  }
}

/** An SSE response: cut only when it cannot take its last message within the grace. */
function sseTransport(res: ServerResponse | undefined): Transport | null {
  if (!res) return null;
  return {
    ended: (_reason, finished) => {
      setTimeout(() => {
        if (!finished()) res.destroy();
      }, GRACE_MS).unref();
    },
    goingAway: () => {
      // Ended cleanly but without `event: complete`: graphql-sse and EventSource clients reconnect.
      // A keep-alive ping racing the end must not become an unhandled 'error'.
      res.on('error', () => undefined);
      res.end();
    },
  };
}

/**
 * One subscription's result stream, which the server can end at any moment: with an error
 * result the subscriber sees (SUBSCRIBER_TOO_SLOW, KEY_REVOKED, KEY_EXPIRED), then its end;
 * or, when shutting down, with nothing at all: the reader waits until its transport is
 * closed and returns it, so no completion reaches the client. It never waits for its source
 * to end.
 */
class LiveSubscription implements AsyncIterableIterator<ExecutionResult> {
  private source: AsyncIterator<ExecutionResult> | null = null;
  private unbind: () => void = () => {};
  private ending: EndReason | null = null;
  private errorSent = false;
  private finished = false;
  private waiting: ((r: IteratorResult<ExecutionResult>) => void) | null = null;

  constructor(private readonly transport: Transport | null) {}

  attach(source: AsyncIterable<ExecutionResult>, unbind: () => void): void {
    this.source = source[Symbol.asyncIterator]();
    this.unbind = unbind;
    if (this.ending) void this.source.return?.();
  }

  end(reason: EndReason): void {
    if (this.finished || this.ending) return;
    this.ending = reason;
    this.unbind();
    void this.source?.return?.()?.catch(() => undefined);
    if (reason === 'shutdown') {
      this.transport?.goingAway();
      return;
    }
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve(this.afterEnd(reason));
    }
    this.transport?.ended(reason, () => this.finished);
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    // Until return(): the transport closing is the only end the client may see.
    if (this.ending === 'shutdown') return new Promise((resolve) => (this.waiting = resolve));
    if (this.ending) return Promise.resolve(this.afterEnd(this.ending));
    const source = this.source!;
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      source.next().then(
        (r) => {
          if (this.waiting !== resolve || this.ending === 'shutdown') return;
          this.waiting = null;
          if (r.done) this.finish();
          resolve(r.done ? { value: undefined, done: true } : r);
        },
        (err: unknown) => {
          if (this.waiting !== resolve || this.ending === 'shutdown') return;
          this.waiting = null;
          if (err instanceof SubscriptionEndedError) {
            const reason = { code: err.code, message: err.message };
            this.end(reason);
            resolve(this.afterEnd(reason));
            return;
          }
          this.finish();
          reject(err);
        },
      );
    });
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.finish();
    void this.source?.return?.()?.catch(() => undefined);
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve({ value: undefined, done: true });
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.finish();
    void this.source?.return?.()?.catch(() => undefined);
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** What the reader gets once ended: the error result (once), then the end. */
  private afterEnd(reason: Exclude<EndReason, 'shutdown'>): IteratorResult<ExecutionResult> {
    if (!this.errorSent) {
      this.errorSent = true;
      return { value: { errors: [new GraphQLError(`subscription ended: ${reason.message}`, { extensions: { code: reason.code } })] }, done: false };
    }
    this.finish();
    return { value: undefined, done: true };
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.unbind();
  }
}
