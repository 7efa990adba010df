import type { Logger } from './logger.js';

export interface PeriodicTaskOptions {
  /** For logs: "inventory", "recovery", … */
  name: string;
  /** Milliseconds between the end of one run and the start of the next; 0: only when asked (runNow). Read again after every run. */
  intervalMs: number | (() => number);
  run: () => Promise<void>;
  logger: Logger;
}

/**
 * One piece of background work that runs every `intervalMs`, never twice at once: the
 * service's periodic passes (inventory, recovery, readiness, the reconciler, …) are all this.
 *
 * - `start()` runs it at once, then after each interval (timers unref'd: they never keep the
 *   process alive);
 * - `runNow()` asks for a run that starts after the call (a run already under way does not
 *   count: it may have read what the caller just changed) and resolves when that run is done;
 *   calls made while one is pending share it;
 * - `idle()` resolves once no run is under way or asked for (tests wait on it instead of
 *   sleeping);
 * - `stop()` runs it no more and waits for the run under way.
 *
 * A failing run is logged with the task's name; the next one is scheduled as usual.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** A run asked for while one was under way: it starts when that one ends. */
  private next: { promise: Promise<void>; resolve: () => void } | undefined;
  private started = false;
  private stopped = false;

  constructor(private readonly options: PeriodicTaskOptions) {}

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    void this.runNow();
  }

  runNow(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (!this.running) return this.launch();
    if (!this.next) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.next = { promise, resolve };
    }
    return this.next.promise;
  }

  /** Resolves when nothing runs and nothing is asked for. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Re-reads the interval now (e.g. after the work's pace changed) instead of after the next run. */
  reschedule(): void {
    if (!this.running) this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.next?.resolve();
    this.next = undefined;
    await this.idle();
  }

  private launch(): Promise<void> {
    clearTimeout(this.timer);
    const run = this.options
      .run()
      .catch((err) => this.options.logger.error({ err, task: this.options.name }, `${this.options.name} failed`))
      .finally(() => {
        this.running = undefined;
        const waiting = this.next;
        this.next = undefined;
        if (waiting && !this.stopped) void this.launch().then(waiting.resolve);
        else this.schedule();
      });
    this.running = run;
    return run;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.stopped || !this.started) return;
    const { intervalMs } = this.options;
    const ms = typeof intervalMs === 'function' ? intervalMs() : intervalMs;
    if (ms <= 0) return;
    this.timer = setTimeout(() => void this.launch(), ms);
    this.timer.unref();
  }
}
