export type Listener = (detail: unknown) => void;

/** Whether this replica can reach the other replicas (always, in process). */
export interface BusLink {
  up: boolean;
  /** Since when it has been so. */
  since: Date;
  /** Why it is down (the last error heard), null when up. */
  error: string | null;
}

/** Where messages travel: in process, or Redis pub/sub between replicas. */
export interface Transport {
  publish(topic: string, detail: unknown): void;
  listen(topic: string, listener: Listener): () => void;
  link(): BusLink;
  onLink(listener: (link: BusLink) => void): () => void;
  /** A message other replicas will not hear (Redis unreachable). */
  onDropped(listener: (topic: string) => void): () => void;
  /** Listeners registered on this replica, across topics. */
  listenerCount(): number;
  close(): Promise<void>;
}

/**
 * A topic → listeners map. Delivered on a later microtask, as Redis would deliver it: a
 * publisher never runs its listeners' code.
 */
export class LocalListeners {
  private readonly byTopic = new Map<string, Set<Listener>>();

  deliver(topic: string, detail: unknown): void {
    const set = this.byTopic.get(topic);
    if (!set?.size) return;
    queueMicrotask(() => {
      for (const listener of set) listener(detail);
    });
  }

  add(topic: string, listener: Listener): () => void {
    const set = this.byTopic.get(topic) ?? new Set<Listener>();
    this.byTopic.set(topic, set);
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.byTopic.get(topic) === set) this.byTopic.delete(topic);
    };
  }

  /** Listeners across all topics (a count for tests: it returns to what it was once subscribers leave). */
  get size(): number {
    return [...this.byTopic.values()].reduce((n, set) => n + set.size, 0);
  }

  clear(): void {
    this.byTopic.clear();
  }
}

/** One process: every listener hears every message, and the link is always up. */
export function inProcessTransport(): Transport {
  const local = new LocalListeners();
  const link: BusLink = { up: true, since: new Date(), error: null };
  return {
    publish: (topic, detail) => local.deliver(topic, detail),
    listen: (topic, listener) => local.add(topic, listener),
    link: () => link,
    onLink: () => () => undefined,
    onDropped: () => () => undefined,
    listenerCount: () => local.size,
    close: async () => local.clear(),
  };
}
