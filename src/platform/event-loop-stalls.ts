import { performance } from 'node:perf_hooks';

export interface EventLoopStallSettings {
  /** How often the clock ticks. */
  tickMs: number;
  /** A gap between ticks this long is a stall of the process, not scheduling noise. */
  stallMs: number;
  /** How long after a stall the backlog it left is still being worked off. */
  forgiveMs: number;
}

/**
 * The event loop's own clock, to tell a stalled server from a slow client. While the
 * process does not run (SIGSTOP, a paused VM, the loop blocked by long work) messages pile
 * up in its sockets and arrive all at once when it runs again: every subscriber's queue then
 * looks too slow, though no client was. A tick every `tickMs`; a gap longer than `stallMs`
 * was a stall. The first callbacks after a stall run before the clock's next tick (I/O is
 * polled first), so a tick overdue by more than `stallMs` counts too.
 */
export class EventLoopStalls {
  private lastTick = performance.now();
  private stallEndedAt = -Infinity;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly settings: EventLoopStallSettings = { tickMs: 100, stallMs: 1000, forgiveMs: 5000 }) {
    this.timer = setInterval(() => {
      const now = performance.now();
      if (now - this.lastTick > this.settings.stallMs) this.stallEndedAt = now;
      this.lastTick = now;
    }, settings.tickMs);
    this.timer.unref();
  }

  /** True while the process stalls or works off what piled up meanwhile: falling behind now is the server's doing. */
  recovering(): boolean {
    const now = performance.now();
    return now - this.lastTick > this.settings.stallMs || now - this.stallEndedAt < this.settings.forgiveMs;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** This process's clock (one event loop, one clock). */
export const eventLoopStalls = new EventLoopStalls();
