import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub, type PubSub } from 'graphql-yoga';
import { Redis } from 'ioredis';
import type { ClusterUsageSample, TenantUsageSample } from './usage-sample.js';

export type UsageEvents = {
  /** One tenant's sample, by tenant id. */
  'usage:tenant': [tenantId: string, sample: TenantUsageSample];
  /** Every tenant's sample (for "all tenants" subscribers and each replica's metrics). */
  'usage:all': [sample: TenantUsageSample];
  'usage:cluster': [clusterId: string, sample: ClusterUsageSample];
  /** "Someone is watching": sent by any replica with subscribers, heard by the sampling leader. */
  'usage:demand': [demand: { replica: string; at: number }];
};

export interface UsageBus {
  pubsub: PubSub<UsageEvents>;
  /** `redis` when samples travel between replicas, `in-process` otherwise. */
  transport: 'redis' | 'in-process';
  close(): Promise<void>;
}

/** In process by default; through Redis when REDIS_URL is set, so replica B's subscribers see replica A's samples. */
export function createUsageBus(redisUrl: string | undefined): UsageBus {
  if (!redisUrl) return { pubsub: createPubSub<UsageEvents>(), transport: 'in-process', close: async () => {} };
  const options = { maxRetriesPerRequest: null, lazyConnect: false } as const;
  const publishClient = new Redis(redisUrl, options);
  const subscribeClient = new Redis(redisUrl, options);
  const eventTarget = createRedisEventTarget({ publishClient, subscribeClient });
  return {
    pubsub: createPubSub<UsageEvents>({ eventTarget }),
    transport: 'redis',
    close: async () => {
      subscribeClient.disconnect();
      publishClient.disconnect();
    },
  };
}
