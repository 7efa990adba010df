// Small pieces the pooler driver needs: where to reach a listener, how to read admin
// console rows, and running applies one at a time.

/** Where this machine reaches a listener (a wildcard listen address means loopback). */
export function localAddress(listenHost: string, listenPort: number): { host: string; port: number } {
  const wildcard = ['0.0.0.0', '::', '*'].includes(listenHost);
  return { host: wildcard ? '127.0.0.1' : listenHost, port: listenPort };
}

/** A number from an admin console row (they come as text or numbers); null when absent. */
export function num(v: unknown): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

export function text(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** Runs tasks one after another (each apply rewrites the same files); a failure does not stop the next. */
export class OneAtATime {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves when the task in flight (if any) is done. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
