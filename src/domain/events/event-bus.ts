import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub, type PubSub } from 'graphql-yoga';
import { Redis } from 'ioredis';
import type { ClusterUsageSample, TenantUsageSample } from '../usage/usage-sample.js';

type Topics = Record<string, [unknown]>;

/**
 * Where usage samples and operation progress travel: in process by default; through Redis when REDIS_URL is set, so
 * replica B's subscribers see what replica A sampled. Channel names carry a prefix (the
 * control database's name by default), so control planes sharing a Redis stay apart.
 */
export class EventBus {
  private constructor(
    private readonly pubsub: PubSub<Topics>,
    private readonly prefix: string,
    /** `redis` when samples travel between replicas, `in-process` otherwise. */
    readonly transport: 'redis' | 'in-process',
    private readonly onClose: () => Promise<void>,
  ) {}

  static create(options: { redisUrl?: string; prefix: string }): EventBus {
    if (!options.redisUrl) return new EventBus(createPubSub<Topics>(), options.prefix, 'in-process', async () => {});
    const redis = { maxRetriesPerRequest: null } as const;
    const publishClient = new Redis(options.redisUrl, redis);
    const subscribeClient = new Redis(options.redisUrl, redis);
    const eventTarget = createRedisEventTarget({ publishClient, subscribeClient });
    return new EventBus(createPubSub<Topics>({ eventTarget }), options.prefix, 'redis', async () => {
      subscribeClient.disconnect();
      publishClient.disconnect();
    });
  }

  private topic(name: string): string {
    return `${this.prefix}:${name}`;
  }

  /** One tenant's sample, on its own channel and on the every-tenant channel. */
  publishTenant(sample: TenantUsageSample): void {
    this.pubsub.publish(this.topic(`usage:tenant:${sample.tenantId}`), sample);
    this.pubsub.publish(this.topic('usage:all'), sample);
  }

  publishCluster(sample: ClusterUsageSample): void {
    this.pubsub.publish(this.topic(`usage:cluster:${sample.clusterId}`), sample);
  }

  /** "Someone is watching": sent by any replica with subscribers, heard by the sampling leader. */
  publishDemand(replica: string): void {
    this.pubsub.publish(this.topic('usage:demand'), { replica, at: Date.now() });
  }

  tenant(tenantId: string): AsyncIterable<TenantUsageSample> {
    return this.pubsub.subscribe(this.topic(`usage:tenant:${tenantId}`)) as AsyncIterable<TenantUsageSample>;
  }

  allTenants(): AsyncIterable<TenantUsageSample> {
    return this.pubsub.subscribe(this.topic('usage:all')) as AsyncIterable<TenantUsageSample>;
  }

  cluster(clusterId: string): AsyncIterable<ClusterUsageSample> {
    return this.pubsub.subscribe(this.topic(`usage:cluster:${clusterId}`)) as AsyncIterable<ClusterUsageSample>;
  }

  demand(): AsyncIterable<unknown> {
    return this.pubsub.subscribe(this.topic('usage:demand'));
  }

  /** A fleet operation moved (its row in the control database is the value). */
  publishOperation(operationId: string): void {
    this.pubsub.publish(this.topic(`operation:${operationId}`), { operationId });
  }

  operation(operationId: string): AsyncIterable<unknown> {
    return this.pubsub.subscribe(this.topic(`operation:${operationId}`));
  }

  /** API keys were revoked (committed): every replica drops them from its key cache and ends their subscriptions. */
  publishKeysRevoked(keyIds: string[]): void {
    if (keyIds.length) this.pubsub.publish(this.topic('keys:revoked'), { keyIds });
  }

  keysRevoked(): AsyncIterable<{ keyIds: string[] }> {
    return this.pubsub.subscribe(this.topic('keys:revoked')) as AsyncIterable<{ keyIds: string[] }>;
  }

  close(): Promise<void> {
    return this.onClose();
  }
}
