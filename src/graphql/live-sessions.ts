import type { ServerResponse } from 'node:http';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { isAsyncIterable, Repeater, type Plugin } from 'graphql-yoga';
import type { Config } from '../platform/config.js';
import type { EventBus } from '../platform/events/event-bus.js';
import type { Logger } from '../platform/logger.js';
import type { TenantryMetrics } from '../platform/metrics.js';
import { PeriodicTask } from '../platform/periodic-task.js';
import type { Viewer } from '../platform/viewer.js';
import { addToSet } from '../platform/streams/keyed-sets.js';
import { SubscriptionEndedError, type SubscriptionEndCode } from '../platform/streams/subscriber-queue.js';

/** How a live session ends: a code the subscriber hears (the stream is over), or this server going away (see leaveAll). */
export type EndReason = { code: SubscriptionEndCode; message: string } | 'shutdown';

/** WebSocket close codes (documented in docs/live-usage.md; shutting down: 1001, going away). */
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
 * For usage subscriptions: a subscriber that falls too far behind (its source dropped it) is
 * ended at once, and its transport is told, so a stuck socket is closed now (1013 on graphql-ws).
 */
export function dropWhenTooSlow(ctx: { config: Pick<Config, 'USAGE_SUBSCRIBER_QUEUE'> }): { onOverflow: () => void } {
  return { onOverflow: () => handles.get(ctx)?.end({ code: 'SUBSCRIBER_TOO_SLOW', message: `it fell ${ctx.config.USAGE_SUBSCRIBER_QUEUE} samples behind` }) };
}

/** Which of these API keys are revoked now (the keys module's ApiKeys answers it from the control database). */
export interface KeyRevocations {
  revokedAmong(keyIds: readonly string[]): Promise<string[]>;
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
 * them within seconds; a subscriber that falls behind ends alone.
 */
export class LiveSessions {
  private readonly byKey = new Map<string, Set<Session>>();
  private readonly sessions = new Set<Session>();
  private readonly transports = new WeakMap<object, Transport>();
  private revocations: AsyncIterator<{ keyIds: string[] }> | undefined;
  private readonly recheck: PeriodicTask;

  constructor(
    private readonly p: {
      /** Where revocations arrive from every replica (keysRevoked). */
      events: EventBus;
      keys: KeyRevocations;
      logger: Logger;
      metrics: TenantryMetrics;
      /** An SSE response turned into a subscription stream (it no longer counts as a request under way). */
      onStream?: (res: ServerResponse) => void;
    },
  ) {
    this.recheck = new PeriodicTask({ name: 'key re-check of open subscriptions', intervalMs: RECHECK_MS, run: () => this.recheckKeys(), logger: p.logger });
  }

  start(): void {
    const revocations = this.p.events.keysRevoked()[Symbol.asyncIterator]();
    this.revocations = revocations;
    void (async () => {
      for (let next = await revocations.next(); !next.done; next = await revocations.next()) this.endKeys(next.value.keyIds, 'KEY_REVOKED');
    })().catch((err) => this.p.logger.error({ err }, 'key revocations: listener stopped'));
    this.recheck.start();
  }

  async stop(): Promise<void> {
    await this.recheck.stop();
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
    this.sessions.add(session);
    const unkey = session.keyId ? addToSet(this.byKey, session.keyId, session) : () => {};
    const close = () => {
      clearTimeout(timer);
      this.sessions.delete(session);
      unkey();
    };
    const expiresAt = viewer?.expiresAt?.getTime();
    if (expiresAt !== undefined) {
      const arm = () => {
        const left = expiresAt - Date.now();
        // Everything of the key ends together, as on revocation (subscriptions, then their socket).
        if (left <= 0) return this.endKeys([session.keyId!], 'KEY_EXPIRED');
        timer = setTimeout(arm, Math.min(left, MAX_DELAY)).unref();
      };
      arm();
    }
    return close;
  }

  /** Ends what these keys opened, here; publishKeysRevoked reaches every replica. */
  endKeys(keyIds: readonly string[], code: 'KEY_REVOKED' | 'KEY_EXPIRED'): void {
    for (const keyId of keyIds) {
      for (const session of [...(this.byKey.get(keyId) ?? [])]) {
        if (session.kind === 'subscription') this.p.metrics.subscribersDropped.inc({ reason: code });
        session.end({ code, message: code === 'KEY_REVOKED' ? 'the API key was revoked' : 'the API key expired' });
      }
    }
  }

  /**
   * Shutting down: no subscription completes (the stream is not over). Each stops producing
   * and its transport is closed (SSE responses end without a `complete` event; graphql-ws
   * sockets are closed with 1001 by their server), so clients see a lost connection and
   * subscribe again, here once restarted or on another replica.
   */
  leaveAll(): void {
    for (const session of [...this.sessions]) session.end('shutdown');
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
        const context = args.contextValue as { viewer?: Viewer | null; res?: ServerResponse; request?: Request };
        return {
          onSubscribeResult: ({ result, setResult }) => {
            if (!isAsyncIterable(result)) return;
            if (context.res) this.p.onStream?.(context.res);
            const transport = this.transports.get(context) ?? sseTransport(context.res);
            const live = new LiveSubscription(result as AsyncIterable<ExecutionResult>, transport, (end) => this.open(context.viewer ?? null, 'subscription', end));
            handles.set(context, live);
            setResult(live);
            // An SSE client that left before the server started sending: the server adapter skips
            // its response without cancelling the body, so the request's signal is what ends the
            // subscription (else its queue, live session and the sampler's demand stayed for good).
            // graphql-ws ends its own operations when its socket closes.
            const signal = context.request?.signal;
            const leave = () => void live.return().catch(() => undefined);
            if (signal?.aborted) leave();
            else signal?.addEventListener('abort', leave, { once: true });
          },
        };
      },
    };
  }

  private async recheckKeys(): Promise<void> {
    if (this.byKey.size === 0) return;
    try {
      this.endKeys(await this.p.keys.revokedAmong([...this.byKey.keys()]), 'KEY_REVOKED');
    } catch (err) {
      this.p.logger.warn({ err }, 'could not re-check the keys of open subscriptions');
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
 * to end. `return()` lets go even before the reader's first call (a Repeater that never
 * started would not run its stop callbacks).
 */
class LiveSubscription extends Repeater<ExecutionResult> {
  private readonly source: AsyncIterator<ExecutionResult>;
  private readonly unbind: () => void;
  private ending: EndReason | null = null;
  /** The reader took the end, or left (what a transport's `finished` tells). */
  private finished = false;
  /** The Repeater's push and stop, once the reader started it. */
  private controls: { push: (value: ExecutionResult) => Promise<unknown>; stop: (error?: unknown) => void } | undefined;

  constructor(
    source: AsyncIterable<ExecutionResult>,
    private readonly transport: Transport | null,
    bind: (end: (reason: EndReason) => void) => () => void,
  ) {
    let self: LiveSubscription | undefined;
    // The executor runs at the reader's first call, long after `self` is set.
    super((push, stop) => self!.started(push, stop));
    self = this;
    this.source = source[Symbol.asyncIterator]();
    this.unbind = bind((reason) => this.end(reason));
  }

  end(reason: EndReason): void {
    if (this.finished || this.ending) return;
    this.ending = reason;
    this.leave();
    if (reason === 'shutdown') return this.transport?.goingAway();
    if (this.controls) this.sendEnd(reason);
    this.transport?.ended(reason, () => this.finished);
  }

  override return(value?: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.finished = true;
    this.leave();
    return super.return(value);
  }

  override throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
    void this.return();
    return Promise.reject(error);
  }

  private started(push: (value: ExecutionResult) => Promise<unknown>, stop: (error?: unknown) => void): void {
    this.controls = { push, stop };
    // Shutting down: until return(), the transport closing is the only end the client may see.
    if (this.ending === 'shutdown') return;
    if (this.ending) return this.sendEnd(this.ending);
    void this.pump();
  }

  /** Pulls the source as the reader asks; detached from the executor, so no end waits for the source's. */
  private async pump(): Promise<void> {
    const { push } = this.controls!;
    try {
      for (let r = await this.source.next(); !r.done && !this.finished && !this.ending; r = await this.source.next()) await push(r.value);
      if (!this.finished && !this.ending) this.finish();
    } catch (err) {
      if (this.finished || this.ending) return;
      if (err instanceof SubscriptionEndedError) return this.end({ code: err.code, message: err.message });
      this.finish(err);
    }
  }

  /** The error result, then the end once the reader asks for more (or leaves). */
  private sendEnd(reason: Exclude<EndReason, 'shutdown'>): void {
    const error = new GraphQLError(`subscription ended: ${reason.message}`, { extensions: { code: reason.code } });
    void this.controls!.push({ errors: [error] }).then(() => this.finish());
  }

  /** Over for the reader: the end (or `error`) once it has taken what was pushed. */
  private finish(error?: unknown): void {
    this.finished = true;
    this.unbind();
    this.controls!.stop(error);
  }

  private leave(): void {
    this.unbind();
    void this.source.return?.()?.catch(() => undefined);
  }
}
