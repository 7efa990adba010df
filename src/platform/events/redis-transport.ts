import { randomUUID } from 'node:crypto';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { LocalListeners, type BusLink, type Transport } from './transport.js';

/** Marks a message with the bus that sent it, so that bus does not deliver it twice (it already did, in process). */
const ORIGIN = '_origin';

/**
 * Redis pub/sub between replicas, and in process within one: a replica's own messages reach
 * its own listeners directly, never through Redis, so a Redis outage costs only what other
 * replicas would have heard (a sampling leader's own subscribers keep receiving). While
 * Redis is unreachable a message for other replicas is dropped, not queued: samples are
 * replaced by the next one (and a resync follows the outage), revocations are re-checked.
 *
 * The link counts as up once both connections are ready and the subscribing one has its
 * channels again (a PING answered after ioredis resubscribed), so a message published right
 * after `up` is heard.
 */
export function redisTransport(url: string, logger: Logger): Transport {
  const origin = randomUUID();
  const local = new LocalListeners();
  // No offline queue and no retries for publishing: a message in flight when the connection
  // drops fails (it is counted as dropped) instead of being sent, out of date, after the outage.
  const publishClient = new Redis(url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
  // disableClientInfo: ioredis sends CLIENT SETINFO on connect, and a SUBSCRIBE made while it
  // connects can get there first; in subscriber mode the SETINFO is then refused, an error that
  // would mark the bus down (and surface as an unhandled rejection) on a healthy Redis.
  const subscribeClient = new Redis(url, { maxRetriesPerRequest: null, disableClientInfo: true });
  const target = createRedisEventTarget({ publishClient, subscribeClient });
  const linkListeners = new Set<(link: BusLink) => void>();
  const dropListeners = new Set<(topic: string) => void>();
  let link: BusLink = { up: false, since: new Date(), error: null };
  /** Whether the listeners heard the current state (the first failure to connect is news too). */
  let announced = false;
  let subscribed = false;
  let closed = false;

  const setLink = (up: boolean, error: string | null) => {
    if (closed) return;
    if (link.up === up && announced) {
      if (!up && error) link = { ...link, error };
      return;
    }
    link = link.up === up ? { ...link, error: up ? null : error } : { up, since: new Date(), error: up ? null : error };
    announced = true;
    for (const listener of linkListeners) listener(link);
  };
  const recompute = (error: string | null = null) => setLink(publishClient.status === 'ready' && subscribeClient.status === 'ready' && subscribed, error);
  const dropped = (topic: string) => {
    for (const listener of dropListeners) listener(topic);
  };

  for (const [name, client] of [['publish', publishClient], ['subscribe', subscribeClient]] as const) {
    // Every reconnection attempt fails with an error while Redis is away: the link's changes are what gets logged.
    client.on('error', (err: Error) => {
      logger.debug({ err: err.message, connection: name }, 'Redis (event bus) error');
      recompute(err.message);
    });
    client.on('close', () => {
      if (client === subscribeClient) subscribed = false;
      recompute(link.error ?? 'connection closed');
    });
  }
  publishClient.on('ready', () => recompute());
  subscribeClient.on('ready', () => {
    // ioredis sends its SUBSCRIBEs on 'ready' without waiting; a PING behind them answers once they are done.
    subscribeClient.ping().then(
      () => {
        subscribed = subscribeClient.status === 'ready';
        recompute();
      },
      (err: Error) => recompute(err.message),
    );
  });

  return {
    publish(topic, detail) {
      local.deliver(topic, detail);
      if (publishClient.status !== 'ready') return dropped(topic);
      publishClient.publish(topic, JSON.stringify({ ...(detail as object), [ORIGIN]: origin })).catch(() => dropped(topic));
    },
    listen(topic, listener) {
      const stopLocal = local.add(topic, listener);
      const remote = (event: Event) => {
        const message: unknown = (event as CustomEvent).detail;
        // Not an object: not one of ours (every message is), but a listener's to judge, not a throw inside ioredis.
        if (!message || typeof message !== 'object') return listener(message);
        const { [ORIGIN]: from, ...detail } = message as Record<string, unknown>;
        if (from !== origin) listener(detail);
      };
      target.addEventListener(topic, remote);
      return () => {
        stopLocal();
        target.removeEventListener(topic, remote);
      };
    },
    link: () => link,
    onLink(listener) {
      linkListeners.add(listener);
      return () => linkListeners.delete(listener);
    },
    onDropped(listener) {
      dropListeners.add(listener);
      return () => dropListeners.delete(listener);
    },
    listenerCount: () => local.size,
    close: async () => {
      closed = true;
      linkListeners.clear();
      dropListeners.clear();
      local.clear();
      subscribeClient.disconnect();
      publishClient.disconnect();
    },
  };
}
