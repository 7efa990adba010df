// Several PgBouncer processes, each running a share of the pools (POOLER_SHARDS). PgBouncer
// re-reads its whole configuration on every RELOAD, and a RELOAD of N pools grows faster than
// N; with the pools split, a change rewrites and reloads only the file of the PgBouncer that
// has the pool, so its cost follows the share, not the fleet.
//
// A pool's PgBouncer is chosen by its name alone (a hash of the tenant's database name), never
// by its cluster: a tenant that moves keeps its PgBouncer, so its pooled connection string
// (host and port) survives the move.
import {
  PoolerFailure,
  PoolerFilesError,
  PoolerUnavailableError,
  NO_ACTIVITY,
  type ApplyOptions,
  type ObservedPool,
  type PoolerAddress,
  type PoolerDriver,
  type PoolerProcessState,
  type PoolSpec,
  type PoolStatsReading,
} from '../pooler-driver.js';
import type { PgBouncerDriver } from './pgbouncer-driver.js';

/** The shard (0 ≤ shard < count) of a pool: 32-bit FNV-1a of its name's UTF-8 bytes. Stable across versions and processes. */
export function shardOf(name: string, count: number): number {
  if (count <= 1) return 0;
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(name, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/** A pool spec as the pooler reports it once applied (for the `running` list of a partial failure). */
function asObserved(spec: PoolSpec): ObservedPool {
  return {
    name: spec.name,
    database: spec.database,
    poolSize: spec.poolSize,
    maxDbConnections: spec.maxDbConnections,
    mode: spec.mode,
    host: spec.serverHost ?? null,
    port: spec.serverPort ?? null,
  };
}

/**
 * Whether a shard's pools are the ones it was last shown to run: the same spec objects in the
 * same order. PoolSync keeps the spec of every tenant it did not read again, so an unchanged
 * shard costs a pointer comparison per pool; a spec read again (even if equal) re-applies its
 * shard, which is only ever more work, never less.
 */
function samePools(a: readonly PoolSpec[] | null, b: readonly PoolSpec[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class PgBouncerShards implements PoolerDriver {
  readonly kind = 'pgbouncer' as const;
  /** Per shard: the pools it was last shown to run (null: unknown, apply it next time). */
  private readonly applied: (readonly PoolSpec[] | null)[];
  /** Each spec's shard (specs are kept between applies: the name is hashed once). */
  private readonly shardOfSpec = new WeakMap<PoolSpec, number>();
  /** Shards reloaded by the last apply (tests and the benchmark read it). */
  lastReloaded: number[] = [];

  constructor(
    readonly shards: readonly PgBouncerDriver[],
    /** The supervisor's state of each shard's process (a shard that is down makes its pools ERROR). */
    private readonly processState: (shard: number) => PoolerProcessState | null = () => null,
  ) {
    if (shards.length === 0) throw new Error('PgBouncerShards needs at least one PgBouncer');
    this.applied = shards.map(() => null);
  }

  get addresses(): readonly PoolerAddress[] {
    return this.shards.map((s) => s.address);
  }

  shardOf(name: string): number {
    return shardOf(name, this.shards.length);
  }

  addressOf(name: string): PoolerAddress {
    return this.shards[this.shardOf(name)]!.address;
  }

  private split(pools: readonly PoolSpec[]): PoolSpec[][] {
    const parts: PoolSpec[][] = this.shards.map(() => []);
    for (const pool of pools) {
      let shard = this.shardOfSpec.get(pool);
      if (shard === undefined) this.shardOfSpec.set(pool, (shard = this.shardOf(pool.name)));
      parts[shard]!.push(pool);
    }
    return parts;
  }

  async writeFiles(pools: readonly PoolSpec[]): Promise<void> {
    const parts = this.split(pools);
    // Rendering validates first, shard by shard; a refusal leaves the later shards unwritten
    // and PoolSync writes none then (as with one PgBouncer).
    for (const [i, driver] of this.shards.entries()) {
      this.applied[i] = null;
      await driver.writeFiles(parts[i]!);
    }
  }

  /**
   * Applies the shards whose pools changed since they were last applied (`verify: 'all'`: every
   * shard, each compared in full). The shards run in parallel; when some fail, the error of the
   * first is thrown with a scope naming the pools of the failed shards only (the others were
   * applied and verified).
   */
  async apply(pools: readonly PoolSpec[], options: ApplyOptions = {}): Promise<void> {
    const parts = this.split(pools);
    const due = this.shards.map((_, i) => i).filter((i) => options.verify === 'all' || !samePools(this.applied[i]!, parts[i]!));
    this.lastReloaded = due;
    const outcomes = await Promise.allSettled(
      due.map(async (i) => {
        this.applied[i] = null; // unknown until this apply is verified
        await this.shards[i]!.apply(parts[i]!, options);
        this.applied[i] = parts[i]!;
      }),
    );
    const failed = new Map<number, unknown>();
    due.forEach((i, k) => {
      const outcome = outcomes[k]!;
      if (outcome.status === 'rejected') failed.set(i, outcome.reason);
    });
    if (failed.size === 0) return;
    const first = this.scoped(failed);
    if (!(first instanceof PoolerFilesError && first.running && first.scope)) throw first;
    // What the failed shard runs, and every other shard's pools (applied or unchanged: as wanted).
    const others = parts.flatMap((part, i) => (failed.has(i) ? [] : part.map(asObserved)));
    const whole = new PoolerFilesError(first.message, first.code, [...first.running, ...others], { cause: first.cause });
    whole.scope = first.scope;
    throw whole;
  }

  /**
   * The error to throw for these failed shards: the first one's, with a scope naming the pools
   * of the failed shards only (with one shard, as it came).
   */
  private scoped(failed: Map<number, unknown>): unknown {
    const [index, first] = [...failed][0]!;
    if (!(first instanceof PoolerFailure) || this.shards.length === 1) return first;
    const label =
      failed.size === 1 ? `PgBouncer ${index} of ${this.shards.length} (port ${this.shards[index]!.address.port})` : `PgBouncers ${[...failed.keys()].join(', ')} of ${this.shards.length}`;
    first.message = `${label}: ${first.message}`;
    first.scope = { label, concerns: (name) => failed.has(this.shardOf(name)), process: this.processState(index) };
    return first;
  }

  shownRunning(pools: readonly PoolSpec[]): void {
    this.split(pools).forEach((part, i) => (this.applied[i] = part));
  }

  async observe(): Promise<ObservedPool[]> {
    const outcomes = await Promise.allSettled(this.shards.map((s) => s.observe()));
    const failed = new Map<number, unknown>();
    outcomes.forEach((o, i) => o.status === 'rejected' && failed.set(i, o.reason));
    if (failed.size > 0) throw this.scoped(failed);
    return outcomes.flatMap((o) => (o.status === 'fulfilled' ? o.value : []));
  }

  observePool(name: string): Promise<ObservedPool | null> {
    return this.shards[this.shardOf(name)]!.observePool(name);
  }

  /** Each PgBouncer's SHOW POOLS at once: the pools of one that does not answer read null; none answering throws. */
  async poolStats(): Promise<PoolStatsReading> {
    const outcomes = await Promise.allSettled(this.shards.map((s) => s.stats()));
    if (outcomes.every((o) => o.status === 'rejected')) throw (outcomes[0] as PromiseRejectedResult).reason;
    return {
      of: (name) => {
        const outcome = outcomes[this.shardOf(name)]!;
        return outcome.status === 'fulfilled' ? (outcome.value.get(name) ?? NO_ACTIVITY) : null;
      },
    };
  }

  async ping(): Promise<void> {
    const outcomes = await Promise.allSettled(this.shards.map((s) => s.ping()));
    const down = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [`PgBouncer ${i} (port ${this.shards[i]!.address.port}): ${(o.reason as Error).message}`] : []));
    if (down.length > 0) throw new PoolerUnavailableError(down.join('; '));
  }

  async serverBackends(): Promise<Map<string, { clientAttached: boolean }>> {
    if (this.shards.length === 1) return this.shards[0]!.serverBackends();
    const merged = new Map<string, { clientAttached: boolean }>();
    for (const part of await Promise.all(this.shards.map((s) => s.serverBackends()))) for (const [key, b] of part) merged.set(key, b);
    return merged;
  }

  pause(name: string, timeoutMs: number): Promise<void> {
    return this.shards[this.shardOf(name)]!.pause(name, timeoutMs);
  }

  resume(name: string): Promise<void> {
    return this.shards[this.shardOf(name)]!.resume(name);
  }

  reconnect(name: string): Promise<void> {
    return this.shards[this.shardOf(name)]!.reconnect(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }
}
