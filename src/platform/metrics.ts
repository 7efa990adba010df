import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Tenantry's Prometheus metrics, on a registry of its own (one per service instance). */
export class TenantryMetrics {
  readonly registry = new Registry();
  readonly tenantConnections = new Gauge({ name: 'tenantry_tenant_connections', help: 'Sessions of the tenant\'s role at the last sample', labelNames: ['tenant'], registers: [this.registry] });
  readonly tenantLimit = new Gauge({ name: 'tenantry_tenant_connection_limit', help: 'The tenant\'s quota (its role\'s CONNECTION LIMIT)', labelNames: ['tenant'], registers: [this.registry] });
  readonly tenantUsageRatio = new Gauge({ name: 'tenantry_tenant_connection_usage_ratio', help: 'Sessions / quota at the last sample (1 = at the limit)', labelNames: ['tenant'], registers: [this.registry] });
  readonly tenantAtLimit = new Counter({ name: 'tenantry_tenant_at_limit_samples_total', help: 'Samples in which the tenant held its whole quota', labelNames: ['tenant'], registers: [this.registry] });
  readonly quotaUpdates = new Counter({ name: 'tenantry_quota_updates_total', help: 'Quota changes applied', registers: [this.registry] });
  readonly samples = new Counter({ name: 'tenantry_usage_samples_total', help: 'Samples taken by this instance (one pg_stat_activity read each)', labelNames: ['cluster'], registers: [this.registry] });
  readonly sampleDuration = new Histogram({
    name: 'tenantry_usage_sample_duration_seconds',
    help: 'Time to take one sample: roster, pg_stat_activity, publish, history',
    labelNames: ['cluster'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly subscribers = new Gauge({ name: 'tenantry_usage_subscribers', help: 'Usage subscriptions open on this instance', registers: [this.registry] });
  readonly subscribersDropped = new Counter({
    name: 'tenantry_subscriptions_ended_total',
    help: 'Subscriptions the server ended: SUBSCRIBER_TOO_SLOW (fell behind), KEY_REVOKED, KEY_EXPIRED',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly samplerLeader = new Gauge({ name: 'tenantry_usage_sampler_leader', help: '1 while this instance holds the cluster\'s sampling lease', labelNames: ['cluster'], registers: [this.registry] });
  readonly batchTenants = new Histogram({
    name: 'tenantry_usage_batch_tenants',
    help: 'Tenants in each published sample (changed or due a heartbeat)',
    labelNames: ['cluster'],
    buckets: [0, 1, 10, 100, 1000, 10_000],
    registers: [this.registry],
  });
  readonly eventBusUp = new Gauge({
    name: 'tenantry_event_bus_up',
    help: '1 while this instance hears the other replicas (Redis reachable, or no Redis), 0 while usage from other replicas cannot arrive',
    registers: [this.registry],
  });
  readonly eventBusDropped = new Counter({
    name: 'tenantry_event_bus_messages_dropped_total',
    help: 'Messages other replicas did not get because Redis was unreachable (usage:batch, usage:demand, usage:resync, keys:revoked, operation)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly historyRows = new Counter({ name: 'tenantry_usage_history_rows_total', help: 'Rows of tenant_usage, usage_minutes and cluster_usage_minutes written (only for tenants and cluster totals whose values changed)', labelNames: ['cluster'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tenantry_process_' });
  }

  /** Exposes the control client's statement count (tenantry_control_statements_total). */
  countControlStatements(counter: { readonly queries: number }): void {
    new Counter({
      name: 'tenantry_control_statements_total',
      help: 'SQL statements sent to the control database (transaction control not counted)',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(counter.queries);
      },
    });
  }

  /** Per-tenant gauges, from a sample taken here or received from another replica. */
  recordTenantSample(s: { tenantSlug: string; current: number; max: number }): void {
    this.tenantConnections.set({ tenant: s.tenantSlug }, s.current);
    this.tenantLimit.set({ tenant: s.tenantSlug }, s.max);
    this.tenantUsageRatio.set({ tenant: s.tenantSlug }, s.max > 0 ? s.current / s.max : 0);
  }

  /** A tenant left (deprovisioned, suspended): its series go. */
  removeTenant(slug: string): void {
    for (const metric of [this.tenantConnections, this.tenantLimit, this.tenantUsageRatio, this.tenantAtLimit]) metric.remove({ tenant: slug });
  }
}
