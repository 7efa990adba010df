import { v7 as uuidv7 } from 'uuid';
import type pg from 'pg';
import type { Prisma, TenantMove } from '../../generated/prisma/client.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { withDatabase } from '../../platform/db/connection-url.js';
import { rowsInOrder } from '../../platform/db/rows-in-order.js';
import { openCatalogSession, withCatalogSession } from '../../platform/db/session-settings.js';
import { UserError } from '../../platform/errors.js';
import type { EventBus } from '../../platform/events/event-bus.js';
import type { Failpoints } from '../../platform/failpoints.js';
import { moveLockKey } from '../../platform/locks/lock-names.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import { trySessionLock } from '../../platform/locks/session-locks.js';
import type { Logger } from '../../platform/logger.js';
import { PeriodicTask } from '../../platform/periodic-task.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { ClusterRegistry } from '../clusters/index.js';
import type { CapacityPlanner } from '../quotas/index.js';
import type { TemplateCatalog } from '../templates/index.js';
import { assertSettled, readOnlyRoleName, type Tenant, type TenantChanges, type Visible } from '../tenants/index.js';
import { dumpAndRestore, dumpToolsFor, entryOid, isReplicationEntry, withSchemaDump } from './dump-tools.js';
import * as sql from './moves.sql.js';

export type { TenantMove };

/** The pooler as a move needs it (PoolSync; each a no-op without a pooler). */
export interface MovePooler {
  /** PAUSE the tenant's pool: waits (at most timeoutMs) until its server connections are idle; clients queue. */
  pauseTenantPool(databaseName: string, timeoutMs: number): Promise<void>;
  /** Re-applies the tenant's pool from the control database (its new cluster) and checks where it points. */
  repointTenantPool(tenantId: string): Promise<void>;
  /** RESUME the tenant's pool (idempotent). */
  resumeTenantPool(databaseName: string): Promise<void>;
  /** The pooler's roles on a cluster (idempotent): its lookup function, restored with the tenant's schema, is owned by one of them. */
  prepareCluster(cluster: ClusterAdmin): Promise<void>;
  /** The pooler's lookup function in the tenant database and CONNECT for its auth user (idempotent). */
  allowPoolerLogin(cluster: ClusterAdmin, databaseName: string): Promise<void>;
}

export type MoveMode = 'ONLINE' | 'OFFLINE';

/** Steps in order; tenant_moves.step holds the last one completed. CUTOVER ends with COMMITTED (the commit point). */
export const ONLINE_STEPS = ['PREFLIGHT', 'TARGET_ROLE', 'TARGET_DATABASE', 'SCHEMA', 'PUBLICATION', 'SUBSCRIPTION', 'INITIAL_COPY', 'INDEXES', 'CATCH_UP', 'COMMITTED', 'CLEANUP'] as const;
export const OFFLINE_STEPS = ['PREFLIGHT', 'TARGET_ROLE', 'TARGET_DATABASE', 'COMMITTED', 'CLEANUP'] as const;
export type MoveStep = (typeof ONLINE_STEPS)[number];

export interface MoveTenantInput {
  slug: string;
  targetClusterId: string;
  mode: MoveMode;
  cutoverTimeoutSeconds?: number | null;
  setReplicaIdentityFull?: boolean | null;
  retainSourceHours?: number | null;
}

export interface MoveOptions {
  cutoverTimeoutSeconds: number;
  setReplicaIdentityFull: boolean;
  retainSourceHours: number;
}

/** Figures of a move so far (tenant_moves.progress). */
export interface MoveProgress {
  warnings?: string[];
  /** Tables set to REPLICA IDENTITY FULL by the preflight (setReplicaIdentityFull). */
  replicaIdentityFull?: string[];
  /** The roles carried, and whether each could log in on the source when the move started. */
  roles?: { name: string; login: boolean }[];
  sourceBytes?: number;
  tablesTotal?: number;
  tablesCopied?: number;
  bytesCopied?: number;
  lagBytes?: number;
  subscriptionOid?: number;
  /** The target's system identifier: with subscriptionOid, it names the subscription's table-sync slots on the source. */
  subscriberSystemId?: string;
  cutoverStartedAt?: string;
  /** How long the pool was paused (or, without a pooler, logins were refused) at the cutover, in ms. */
  pauseMs?: number;
  sequencesCopied?: number;
  /** Per table ("schema.table"), the rows counted on both sides at the cutover (equal, or the move stops). */
  rowCounts?: Record<string, number>;
  dumpTool?: string;
  retainedName?: string;
  /** Milliseconds into the cutover at which each of its phases ended (where the pause goes). */
  cutoverPhases?: Record<string, number>;
  /**
   * Why the move is being undone, kept when its rollback could not finish (a server it needs
   * was down): recovery finishes the rollback with this outcome instead of "the server stopped".
   */
  undoing?: { status: 'FAILED' | 'ROLLED_BACK'; reason: string };
}

class CutoverTimeout extends Error {
  override name = 'CutoverTimeout';
}

/**
 * The cutover's commit was sent and its answer did not come back as a success: it may have
 * committed. The source is kept closed until the move's row says which (read back, not assumed).
 */
class CommitOutcomeUnknown extends Error {
  override name = 'CommitOutcomeUnknown';
}

const MAX_RETAIN_HOURS = 24 * 30;
/** How often a copy or catch-up records its figures (what the tenantMove subscription shows meanwhile). */
const FIGURES_EVERY_MS = 2000;

interface Ctx {
  move: TenantMove;
  tenant: Tenant;
  source: ClusterAdmin;
  target: ClusterAdmin;
  options: MoveOptions;
  progress: MoveProgress;
  name: string;
  /** The pool was repointed and resumed by this run's cutover (recovery does it again). */
  repointed?: boolean;
}

/**
 * Moving a tenant to another cluster (docs/moves.md): ONLINE by logical replication (copy,
 * indexes, catch-up, a short cutover) or OFFLINE by pg_dump | pg_restore. A move is a
 * tenant_moves row whose step advances as each step completes; it runs in the background under
 * an advisory lock on a control-database session of its own (like a fleet operation). A server
 * that stops leaves it RUNNING: whichever server takes its lock next rolls it back when it had
 * not reached COMMITTED, or finishes it (repoint, resume, cleanup) when it had.
 */
export class TenantMoves {
  private readonly running = new Map<string, Promise<void>>();
  private stopping = false;
  private resumer: PeriodicTask | undefined;

  constructor(
    private readonly p: {
      db: ControlClient;
      logger: Logger;
      /** The control database's URL: each running move holds its advisory lock on a session of its own. */
      controlUrl: string;
      clusters: ClusterRegistry;
      locks: TenantLocks;
      failpoints: Failpoints;
      capacity: CapacityPlanner;
      catalog: TemplateCatalog;
      changes?: TenantChanges;
      /** Where a move's changes are told (the `tenantMove` subscription, on any replica). */
      events: Pick<EventBus, 'publishRowChange' | 'rowChanges'>;
      pooler?: MovePooler;
      /** Where else to look for pg_dump/pg_restore (besides PATH and /usr/lib/postgresql/<major>/bin). */
      dumpToolDirs?: string[];
      /** CATCH_UP ends when the slot trails the source by less than this (bytes). */
      catchUpLagBytes?: number;
      /** INITIAL_COPY and CATCH_UP give up (the move is rolled back) after this long. */
      copyTimeoutMs?: number;
    },
  ) {}

  // ---- reads ---------------------------------------------------------------------------------

  async byIds(ids: readonly string[]): Promise<(TenantMove | null)[]> {
    const rows = await this.p.db.tenantMove.findMany({ where: { id: { in: [...ids] } } });
    return rowsInOrder(ids, rows, (r) => r.id);
  }

  /** Each tenant's moves, newest first. */
  async ofTenants(tenantIds: readonly string[]): Promise<TenantMove[][]> {
    const rows = await this.p.db.tenantMove.findMany({ where: { tenantId: { in: [...tenantIds] } }, orderBy: { createdAt: 'desc' } });
    return tenantIds.map((id) => rows.filter((r) => r.tenantId === id));
  }

  /** A wake-up whenever the move's row changed (its step, figures or status), from any replica. */
  progress(moveId: string): AsyncIterable<unknown> {
    return this.p.events.rowChanges('move', moveId);
  }

  /** Tests and the lead's drain: resolves when the move's background run (if any) in this process ends. */
  async settled(id: string): Promise<void> {
    await this.running.get(id);
  }

  // ---- start ---------------------------------------------------------------------------------

  async moveTenant(op: OperationContext, input: MoveTenantInput, visible: Visible): Promise<{ move: TenantMove; warnings: string[] }> {
    const { db, clusters, locks } = this.p;
    const options: MoveOptions = {
      cutoverTimeoutSeconds: input.cutoverTimeoutSeconds ?? 30,
      setReplicaIdentityFull: input.setReplicaIdentityFull ?? false,
      retainSourceHours: input.retainSourceHours ?? 24,
    };
    if (input.mode !== 'ONLINE' && input.mode !== 'OFFLINE') throw new UserError('INVALID_INPUT', 'mode must be ONLINE or OFFLINE', 'mode');
    if (!Number.isInteger(options.cutoverTimeoutSeconds) || options.cutoverTimeoutSeconds < 1 || options.cutoverTimeoutSeconds > 600) {
      throw new UserError('INVALID_INPUT', 'cutoverTimeoutSeconds must be 1 to 600', 'cutoverTimeoutSeconds');
    }
    if (!Number.isInteger(options.retainSourceHours) || options.retainSourceHours < 0 || options.retainSourceHours > MAX_RETAIN_HOURS) {
      throw new UserError('INVALID_INPUT', `retainSourceHours must be 0 to ${MAX_RETAIN_HOURS}`, 'retainSourceHours');
    }
    const found = await db.tenant.findUnique({ where: { slug: input.slug } });
    if (!found || !visible(found) || found.status === 'DEPROVISIONED') throw new UserError('NOT_FOUND', `no tenant ${input.slug}`, 'slug');
    const targetRow = /^[0-9a-f-]{36}$/i.test(input.targetClusterId) ? await db.cluster.findUnique({ where: { id: input.targetClusterId } }) : null;
    if (!targetRow) throw new UserError('NOT_FOUND', `no cluster ${input.targetClusterId}`, 'targetClusterId');
    const source = await clusters.get(found.clusterId);
    let target: ClusterAdmin;
    try {
      target = await clusters.adminFor(targetRow);
      await target.query('SELECT 1');
    } catch (err) {
      throw new UserError('CLUSTER_UNREACHABLE', `cluster ${targetRow.name} cannot be reached: ${(err as Error).message}`, 'targetClusterId');
    }

    // The move's lock is held before its row exists: recovery, here or on another server, never
    // sees it RUNNING with nobody holding it (it would roll back a move that is just starting).
    const id = uuidv7();
    const claim = await claimMove(this.p.controlUrl, id);
    const started = await locks.underTenantLock(found, async () => {
      const tenant = await db.tenant.findUniqueOrThrow({ where: { id: found.id } });
      assertSettled(tenant, 'a move');
      if (tenant.clusterId === targetRow.id) throw new UserError('INVALID_INPUT', `tenant ${tenant.slug} is already on cluster ${targetRow.name}`, 'targetClusterId');
      const open = await db.tenantMove.findFirst({ where: { tenantId: tenant.id, status: 'RUNNING' } });
      if (open) throw new UserError('TENANT_BUSY', `tenant ${tenant.slug} is already moving (move ${open.id})`, 'slug');
      if (targetRow.status !== 'ACTIVE') {
        throw new UserError('MOVE_PREFLIGHT_FAILED', `cluster ${targetRow.name} is ${targetRow.status}: tenants move only to ACTIVE clusters`, 'targetClusterId');
      }
      const pre = await this.preflight(tenant, source, target, input.mode, options);
      return db.$transaction(async (tx) => {
        if (pre.replicaIdentityFull.length) {
          await recordAuditEvent(tx, op, { category: 'move', action: 'move.replica-identity-full', tenant, subject: tenant.databaseName, metadata: { tables: pre.replicaIdentityFull } });
        }
        const move = await tx.tenantMove.create({
          data: {
            id,
            tenantId: tenant.id,
            sourceClusterId: source.id,
            targetClusterId: target.id,
            mode: input.mode,
            step: 'PREFLIGHT',
            options: { ...options },
            progress: { warnings: pre.warnings, replicaIdentityFull: pre.replicaIdentityFull, sourceBytes: pre.sourceBytes, dumpTool: pre.dumpTool } satisfies MoveProgress as Prisma.InputJsonValue,
            requestedBy: op.actor,
          },
        });
        await recordAuditEvent(tx, op, {
          category: 'move',
          action: 'move.started',
          tenant,
          subject: id,
          metadata: { mode: input.mode, from: source.name, to: target.name, ...options, warnings: pre.warnings },
        });
        return { move, warnings: pre.warnings };
      });
    }).catch(async (err: unknown) => {
      await claim.end().catch(() => undefined);
      throw err;
    });
    // Committed, not yet running (a recovery pass may look at it now: the claim holds it).
    await this.p.failpoints.hit('move.started', { tenantSlug: found.slug }).catch(async (err: unknown) => {
      await claim.end().catch(() => undefined);
      throw err;
    });
    this.launch(started.move.id, true, claim);
    return started;
  }

  /**
   * Everything that would stop the move, collected (not the first only): MOVE_PREFLIGHT_FAILED
   * lists them all, and nothing is created. With setReplicaIdentityFull, tables without a
   * replica identity are given REPLICA IDENTITY FULL here (the only change a preflight makes).
   */
  private async preflight(tenant: Tenant, source: ClusterAdmin, target: ClusterAdmin, mode: MoveMode, options: MoveOptions) {
    const problems: string[] = [];
    const warnings: string[] = [];
    const [src, dst] = await Promise.all([source.query(sql.walSettings), target.query(sql.walSettings)]);
    const s = src.rows[0]!;
    const d = dst.rows[0]!;
    const major = (v: number) => Math.floor(v / 10000);
    // The dump tools first: without them nothing else matters, and the caller gets the precise code.
    const tools = await dumpToolsFor(s.version_num, d.version_num, this.p.dumpToolDirs);
    if (d.version_num < s.version_num && major(d.version_num) < major(s.version_num)) {
      problems.push(`the target runs PostgreSQL ${major(d.version_num)}, older than the source's ${major(s.version_num)}: moves go to the same or a newer major version`);
    }
    if (!s.superuser) problems.push(`the control plane is not superuser on the source cluster ${source.name}: reading the tenant's password verifier (pg_authid) and publishing FOR ALL TABLES need it`);
    if (!d.superuser) problems.push(`the control plane is not superuser on the target cluster ${target.name}: creating a subscription and restoring with the owners kept need it`);
    if (!this.p.catalog.resolve(tenant.templateName, tenant.templateVersion)) {
      problems.push(`template ${tenant.templateName} ${tenant.templateVersion} is not in this service's catalog, so it cannot be prepared on the target`);
    }
    if (mode === 'ONLINE') {
      if (s.wal_level !== 'logical') problems.push(`the source's wal_level is ${s.wal_level}, not logical (ALTER SYSTEM SET wal_level = logical and restart it, or move OFFLINE)`);
      // The subscription's slot and, while copying, a slot per table-sync worker (2 by default).
      if (s.max_slots - s.slots_used < 3) problems.push(`the source has ${s.max_slots - s.slots_used} free replication slots of ${s.max_slots}; an ONLINE move needs 3 (raise max_replication_slots)`);
      if (s.max_senders - s.senders_used < 3) problems.push(`the source has ${s.max_senders - s.senders_used} free WAL senders of ${s.max_senders}; an ONLINE move needs 3 (raise max_wal_senders)`);
      if (d.max_workers - d.workers_used < 2) problems.push(`the target has ${d.max_workers - d.workers_used} free logical replication workers of ${d.max_workers}; an ONLINE move needs 2 (raise max_logical_replication_workers)`);
    }
    try {
      await this.p.pooler?.prepareCluster(target);
    } catch (err) {
      problems.push(`the pooler's roles cannot be prepared on the target: ${(err as Error).message}`);
    }
    const exists = await target.query(sql.databaseExists, [tenant.databaseName]);
    if (exists.rowCount) problems.push(`a database named ${tenant.databaseName} already exists on the target`);
    const targetRoles = await target.query<{ rolname: string }>(sql.roleNames, [tenant.roleName, readOnlyRoleName(tenant.roleName, '')]);
    if (targetRoles.rowCount) {
      const retained = await this.p.db.tenantMove.findFirst({ where: { tenantId: tenant.id, sourceClusterId: target.id, status: 'SUCCEEDED' } });
      if (!retained) problems.push(`roles named like the tenant's already exist on the target (${targetRoles.rows.map((r) => r.rolname).join(', ')})`);
    }
    try {
      await this.p.capacity.assertWithinCapacity(target, { tenantId: tenant.id, slug: tenant.slug, quota: (await this.p.db.quota.findUniqueOrThrow({ where: { tenantId: tenant.id } })).maxConnections });
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      problems.push(err.message);
    }

    const replicaIdentityFull: string[] = [];
    let sourceBytes = 0;
    await source.withDatabase(tenant.databaseName, async (c) => {
      await c.query('SET statement_timeout = 0');
      const offered = async (name: string) => (await target.query<{ version: string }>(sql.offeredVersions, [name])).rows.map((r) => r.version);
      for (const ext of (await c.query<{ name: string; version: string }>(sql.installedExtensions)).rows) {
        const versions = await offered(ext.name);
        if (!versions.length) problems.push(`extension ${ext.name} is not available on the target`);
        else if (!versions.includes(ext.version)) problems.push(`extension ${ext.name} ${ext.version} is not available on the target (it offers ${versions.join(', ')})`);
      }
      const owners = (await c.query<{ owner: string }>(sql.objectOwners)).rows.map((r) => r.owner);
      const carried = new Set([tenant.roleName]);
      for (const owner of owners) {
        if (carried.has(owner) || owner.startsWith(readOnlyRoleName(tenant.roleName, ''))) continue;
        if (!(await target.query(sql.roleExists, [owner])).rowCount) problems.push(`role ${owner} owns objects in the tenant database and does not exist on the target`);
      }
      const tables = (await c.query<{ schema: string; name: string; persistence: string; replident: string; has_key: boolean; bytes: string }>(sql.userTables)).rows;
      sourceBytes = tables.reduce((n, t) => n + Number(t.bytes), 0);
      const unlogged = tables.filter((t) => t.persistence === 'u').map((t) => `${t.schema}.${t.name}`);
      if (unlogged.length) {
        if (mode === 'ONLINE') warnings.push(`unlogged tables are not replicated: their rows are not carried (${unlogged.join(', ')})`);
      }
      const los = Number((await c.query<{ n: string }>(sql.largeObjectCount)).rows[0]!.n);
      if (los > 0 && mode === 'ONLINE') warnings.push(`${los} large objects are not carried by logical replication`);
      const matviews = (await c.query<{ schema: string; name: string }>(sql.materializedViews)).rows.map((m) => `${m.schema}.${m.name}`);
      if (matviews.length) warnings.push(`materialized views are created empty and refreshed on the target, not copied (${matviews.join(', ')})`);
      if (mode === 'ONLINE') {
        const missing = tables.filter((t) => t.persistence === 'p' && !t.has_key && t.replident !== 'f').map((t) => ({ schema: t.schema, name: t.name }));
        if (missing.length && !options.setReplicaIdentityFull) {
          problems.push(
            `tables without a replica identity (no primary key, no REPLICA IDENTITY index or FULL): ${missing.map((t) => `${t.schema}.${t.name}`).join(', ')}; ` +
              'add a primary key, or pass setReplicaIdentityFull: true (updates and deletes then find rows by every column)',
          );
        }
        if (major(s.version_num) < 16) {
          const code = (await c.query<{ what: string }>(sql.codeRunByWriter)).rows.map((r) => r.what);
          if (code.length) {
            problems.push(
              `on PostgreSQL ${major(s.version_num)} replicated rows are written as a superuser, and the tenant has code that would run then (${code.join(', ')}); move it OFFLINE or drop them first`,
            );
          }
        }
        if (!problems.length && missing.length) {
          for (const t of missing) {
            await c.query(sql.setReplicaIdentityFull(t.schema, t.name));
            replicaIdentityFull.push(`${t.schema}.${t.name}`);
          }
        }
      } else {
        const code = (await c.query<{ what: string }>(sql.codeRunByWriter)).rows.map((r) => r.what);
        if (code.length) problems.push(`restored rows are written as a superuser, and the tenant has code that would run then (${code.join(', ')}); drop it before the move`);
      }
    });
    if (problems.length) throw new UserError('MOVE_PREFLIGHT_FAILED', `tenant ${tenant.slug} cannot move to ${target.name}: ${problems.join('; ')}`, 'targetClusterId');
    return { warnings, replicaIdentityFull, sourceBytes, dumpTool: `${tools.pgDump} (${tools.major})` };
  }

  // ---- background ----------------------------------------------------------------------------

  /** Moves nobody runs (left by a stopped server) and retained databases past their time: now and every `intervalMs`. */
  start(intervalMs: number): void {
    if (this.resumer || this.stopping) return;
    this.resumer = new PeriodicTask({ name: 'move recovery', intervalMs, logger: this.p.logger, run: () => this.recover() });
    this.resumer.start();
  }

  /** One pass: RUNNING moves nobody holds are rolled back (before COMMITTED) or finished; expired retained databases dropped. */
  async recover(): Promise<void> {
    try {
      const open = await this.p.db.tenantMove.findMany({ where: { status: 'RUNNING' }, select: { id: true } });
      for (const { id } of open) this.launch(id, false);
      await Promise.allSettled(open.map(({ id }) => this.running.get(id)));
      await this.dropExpiredRetained();
    } catch (err) {
      this.p.logger.error({ err }, 'move recovery failed');
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.resumer?.stop();
    await Promise.allSettled([...this.running.values()]);
  }

  /**
   * Runs the move in the background. `claim`: its lock, taken by moveTenant before the row
   * existed; a recovery pass that saw the row meanwhile found the lock held and gives way.
   * Without it, run takes the lock if nobody holds it.
   */
  private launch(id: string, fresh: boolean, claim?: pg.Client): void {
    if (this.stopping || (!claim && this.running.has(id))) {
      void claim?.end().catch(() => undefined);
      return;
    }
    const before = this.running.get(id) ?? Promise.resolve();
    const body = claim ? () => before.then(() => this.runClaimed(id, fresh, claim)).finally(() => claim.end().catch(() => undefined)) : () => this.run(id, fresh);
    const run: Promise<void> = this.p.locks
      .detached(body)
      .catch((err) => this.p.logger.error({ err, move: id }, 'move failed'))
      .finally(() => {
        if (this.running.get(id) === run) this.running.delete(id);
      });
    this.running.set(id, run);
  }

  private async run(id: string, fresh: boolean): Promise<void> {
    await withCatalogSession(this.p.controlUrl, { applicationName: 'tenantry-move' }, async (lock) => {
      if (!(await trySessionLock(lock, moveLockKey(id)))) return; // another server runs it
      await this.runClaimed(id, fresh, lock);
    });
  }

  /** The move, its lock held on `lock` (a session of its own). */
  private async runClaimed(id: string, fresh: boolean, lock: pg.Client): Promise<void> {
    const move = await this.p.db.tenantMove.findUniqueOrThrow({ where: { id } });
    if (move.status !== 'RUNNING') return;
    const ctx = await this.context(move);
    const steps: readonly string[] = move.mode === 'ONLINE' ? ONLINE_STEPS : OFFLINE_STEPS;
    const done = steps.indexOf(move.step ?? 'PREFLIGHT');
    const committed = steps.indexOf('COMMITTED');
    if (done < committed && !fresh) {
      const undoing = ctx.progress.undoing ?? { status: 'ROLLED_BACK', reason: `the server running the move stopped at step ${move.step}; rolled back by recovery` };
      await this.undo(ctx, undoing.status, undoing.reason);
      return;
    }
    try {
      if (done < committed) await this.forward(ctx, lock);
    } catch (err) {
      if (this.stopping) return; // recovery (here or on another server) rolls it back or finishes it
      if (err instanceof CommitOutcomeUnknown) {
        // Read back (a control database still down throws: recovery reads it later, the source kept closed meanwhile).
        ctx.move = await this.p.db.tenantMove.findUniqueOrThrow({ where: { id } });
        if (ctx.move.step !== 'COMMITTED') {
          await this.undo(ctx, 'FAILED', err.message.slice(0, 1000));
          return;
        }
        this.p.logger.warn({ err, move: id }, 'the cutover\'s commit answered with an error but had committed: finishing the move');
        await this.finish(ctx);
        return;
      }
      const timeout = err instanceof CutoverTimeout;
      if (!timeout && !(err instanceof UserError)) this.p.logger.error({ err, move: id }, 'move failed; rolling back');
      await this.undo(ctx, timeout ? 'ROLLED_BACK' : 'FAILED', (err as Error).message.slice(0, 1000));
      return;
    }
    if (ctx.move.step === 'COMMITTED' || ctx.move.step === 'CLEANUP') await this.finish(ctx);
  }

  private async context(move: TenantMove): Promise<Ctx> {
    const tenant = await this.p.db.tenant.findUniqueOrThrow({ where: { id: move.tenantId } });
    return {
      move,
      tenant,
      source: await this.p.clusters.get(move.sourceClusterId),
      target: await this.p.clusters.get(move.targetClusterId),
      options: move.options as unknown as MoveOptions,
      progress: { ...(move.progress as MoveProgress) },
      name: sql.moveObjectName(move.id),
    };
  }

  private async record(ctx: Ctx, step?: MoveStep): Promise<void> {
    ctx.move = await this.p.db.tenantMove.update({
      where: { id: ctx.move.id },
      data: { ...(step ? { step } : {}), progress: ctx.progress as Prisma.InputJsonValue },
    });
    this.told(ctx);
  }

  /** For a step's watch loop: records the move's figures (and tells subscribers) at most every FIGURES_EVERY_MS. */
  private figuresRecorder(ctx: Ctx): () => Promise<void> {
    let last = Date.now();
    return async () => {
      if (Date.now() - last <= FIGURES_EVERY_MS) return;
      await this.record(ctx);
      last = Date.now();
    };
  }

  /** Its row changed: subscribers read it again. */
  private told(ctx: Ctx): void {
    this.p.events.publishRowChange('move', ctx.move.id);
  }

  private async forward(ctx: Ctx, lock: pg.Client): Promise<void> {
    const steps: readonly MoveStep[] = ctx.move.mode === 'ONLINE' ? ONLINE_STEPS : OFFLINE_STEPS;
    for (const step of steps.slice(steps.indexOf((ctx.move.step ?? 'PREFLIGHT') as MoveStep) + 1)) {
      if (this.stopping) throw new Error('the server is stopping');
      await lock.query('SELECT 1'); // the move's lock session is alive: nobody else can be rolling it back
      if (step === 'COMMITTED') {
        await this.cutover(ctx);
        return;
      }
      await this.steps[step as Exclude<MoveStep, 'PREFLIGHT' | 'COMMITTED' | 'CLEANUP'>](ctx);
      await this.p.failpoints.hit(`move.after:${step}`, { tenantSlug: ctx.tenant.slug });
      await this.record(ctx, step);
      if (step === 'INITIAL_COPY') {
        await recordAuditEvent(this.p.db, this.actor(ctx), { category: 'move', action: 'move.copied', tenant: ctx.tenant, subject: ctx.move.id, metadata: { tables: ctx.progress.tablesTotal ?? 0, bytes: ctx.progress.bytesCopied ?? 0 } });
      }
    }
  }

  private actor(ctx: Ctx): OperationContext {
    return { actor: `move ${ctx.move.id}`, correlationId: ctx.move.id };
  }

  private readonly steps: Record<'TARGET_ROLE' | 'TARGET_DATABASE' | 'SCHEMA' | 'PUBLICATION' | 'SUBSCRIPTION' | 'INITIAL_COPY' | 'INDEXES' | 'CATCH_UP', (ctx: Ctx) => Promise<void>> = {
    TARGET_ROLE: async (ctx) => {
      const { source, target, tenant } = ctx;
      const { rows } = await source.query<{ rolname: string; rolpassword: string | null; rolconnlimit: number; rolinherit: boolean; rolcanlogin: boolean; rolvaliduntil: Date | null }>(
        sql.rolesToCarry,
        [tenant.roleName, readOnlyRoleName(tenant.roleName, '')],
      );
      if (!rows.some((r) => r.rolname === tenant.roleName)) throw new Error(`the tenant's role ${tenant.roleName} does not exist on the source`);
      if (!ctx.progress.roles) {
        // Recorded before the first is made: a rollback knows what to give back and what to drop.
        ctx.progress.roles = rows.map((r) => ({ name: r.rolname, login: r.rolcanlogin }));
        await this.record(ctx);
      }
      for (const r of rows) {
        const exists = (await target.query(sql.roleExists, [r.rolname])).rowCount! > 0;
        await target.query(sql.createCarriedRole(r, exists));
      }
    },

    TARGET_DATABASE: async (ctx) => {
      const { source, target, tenant } = ctx;
      const db = tenant.databaseName;
      const f = (await source.query(sql.databaseFacts, [db])).rows[0];
      if (!f) throw new Error(`the database ${db} does not exist on the source`);
      if (!(await target.query(sql.databaseExists, [db])).rowCount) {
        await target.query(sql.createDatabase(db, f.owner, f.encoding, f.datcollate, f.datctype));
      }
      if (f.datconnlimit >= 0) await target.query(sql.setDatabaseConnectionLimit(db, f.datconnlimit));
      if (!f.default_acl) {
        await target.query(sql.revokeAllFromPublic(db));
        for (const g of f.grants as string[]) {
          const at = g.lastIndexOf('=');
          await target.query(sql.grantOnDatabase(db, g.slice(at + 1), g.slice(0, at)));
        }
      }
      for (const setting of f.settings as string[]) {
        const at = setting.indexOf('=');
        const name = setting.slice(0, at);
        const value = setting.slice(at + 1);
        if (name === 'search_path') {
          const parts = value.split(',').map((p) => p.trim().replace(/^"(.*)"$/, '$1').replace(/""/g, '"'));
          await target.query(sql.setDatabaseSearchPath(db, parts));
        } else {
          await target.query(sql.setDatabaseSetting(db, name, value));
        }
      }
    },

    SCHEMA: async (ctx) => {
      const { source, target, tenant } = ctx;
      const tools = await dumpToolsFor((await source.identity()).serverVersionNum, (await target.identity()).serverVersionNum, this.p.dumpToolDirs);
      const keys = await this.keyOids(ctx);
      await withSchemaDump(tools, source.url, tenant.databaseName, async (dump) => {
        await dump.restore(target.url, tenant.databaseName, { section: 'pre-data' });
        // Primary keys and replica identity indexes before the copy: the catch-up finds rows by them.
        const post = await dump.entries('post-data');
        await dump.restore(target.url, tenant.databaseName, { entries: post.filter((l) => keys.has(entryOid(l) ?? -1)) });
      });
      await this.p.pooler?.allowPoolerLogin(target, tenant.databaseName);
    },

    PUBLICATION: async (ctx) => {
      await ctx.source.withDatabase(ctx.tenant.databaseName, async (c) => {
        if (!(await c.query(sql.publicationExists, [ctx.name])).rowCount) await c.query(sql.createPublication(ctx.name));
      });
    },

    SUBSCRIPTION: async (ctx) => {
      const conninfo = withDatabase(ctx.source.url, ctx.tenant.databaseName);
      await ctx.target.withDatabase(ctx.tenant.databaseName, async (c) => {
        await c.query('SET statement_timeout = 0');
        if (!(await c.query(sql.subscriptionExists, [ctx.name])).rowCount) await c.query(sql.createSubscription(ctx.name, conninfo, ctx.name));
        const { rows } = await c.query<{ oid: number; system_id: string }>(sql.subscriptionIdentity, [ctx.name]);
        ctx.progress.subscriptionOid = Number(rows[0]!.oid);
        ctx.progress.subscriberSystemId = rows[0]!.system_id;
      });
    },

    INITIAL_COPY: async (ctx) => {
      const deadline = Date.now() + (this.p.copyTimeoutMs ?? 6 * 3600_000);
      const recordFigures = this.figuresRecorder(ctx);
      await ctx.target.withDatabase(ctx.tenant.databaseName, async (c) => {
        for (;;) {
          const t = (await c.query<{ total: number; ready: number }>(sql.subscriptionTables, [ctx.name])).rows[0]!;
          const bytes = Number((await c.query<{ bytes: string }>(sql.databaseSize, [ctx.tenant.databaseName])).rows[0]!.bytes);
          Object.assign(ctx.progress, { tablesTotal: t.total, tablesCopied: t.ready, bytesCopied: bytes });
          if (t.ready === t.total) return;
          // Without its slot the apply worker cannot start, and the copied tables never turn ready
          // (asked first: the errors the subscription then reports are the slot's).
          await this.lag(ctx, null);
          await this.assertNoSubscriptionErrors(c, ctx.name);
          if (Date.now() > deadline) throw new Error(`the initial copy did not finish in ${Math.round((this.p.copyTimeoutMs ?? 0) / 1000)} s`);
          await recordFigures();
          await this.p.failpoints.hit('move.copying', { tenantSlug: ctx.tenant.slug });
          await sleep(250);
        }
      });
    },

    INDEXES: async (ctx) => {
      const { source, target, tenant } = ctx;
      const tools = await dumpToolsFor((await source.identity()).serverVersionNum, (await target.identity()).serverVersionNum, this.p.dumpToolDirs);
      const keys = await this.keyOids(ctx);
      await withSchemaDump(tools, source.url, tenant.databaseName, async (dump) => {
        const post = await dump.entries('post-data');
        // The move's own publication (made on the source before this dump) is not the tenant's.
        await dump.restore(target.url, tenant.databaseName, { entries: post.filter((l) => !keys.has(entryOid(l) ?? -1) && !isReplicationEntry(l)) });
      });
      await this.refreshMaterializedViews(ctx);
    },

    CATCH_UP: async (ctx) => {
      // Statistics and visibility maps for the copied tables: the planner has figures from the
      // first query, and the cutover's row counts can be index-only scans on both sides.
      await Promise.all([ctx.source, ctx.target].map((cluster) => cluster.withDatabase(ctx.tenant.databaseName, async (c) => {
        await c.query('SET statement_timeout = 0');
        await c.query(sql.vacuumAnalyze);
      })));
      const deadline = Date.now() + (this.p.copyTimeoutMs ?? 6 * 3600_000);
      const limit = this.p.catchUpLagBytes ?? 4 * 1024 * 1024;
      let below = 0;
      const recordFigures = this.figuresRecorder(ctx);
      for (;;) {
        const lag = await this.lag(ctx, null);
        ctx.progress.lagBytes = lag.lag;
        if (lag.lag < limit && ++below >= 2) return;
        if (lag.lag >= limit) below = 0;
        if (Date.now() > deadline) throw new Error(`the subscription did not catch up (lag ${lag.lag} bytes)`);
        await recordFigures();
        await ctx.target.withDatabase(ctx.tenant.databaseName, (c) => this.assertNoSubscriptionErrors(c, ctx.name));
        await sleep(200);
      }
    },
  };

  private async keyOids(ctx: Ctx): Promise<Set<number>> {
    return ctx.source.withDatabase(ctx.tenant.databaseName, async (c) => new Set((await c.query<{ oid: string }>(sql.keyObjectOids)).rows.map((r) => Number(r.oid))));
  }

  private async refreshMaterializedViews(ctx: Ctx): Promise<void> {
    // REFRESH runs the view's query as the view's owner (a security-restricted operation).
    await ctx.target.withDatabase(ctx.tenant.databaseName, async (c) => {
      await c.query('SET statement_timeout = 0');
      for (const m of (await c.query<{ schema: string; name: string }>(sql.materializedViews)).rows) {
        await c.query(sql.refreshMaterializedView(m.schema, m.name));
      }
    });
  }

  private async assertNoSubscriptionErrors(c: pg.Client, name: string): Promise<void> {
    const { rows } = await c.query<{ errors: string }>(
      `SELECT (apply_error_count + sync_error_count)::pg_catalog.int8 AS errors FROM pg_catalog.pg_stat_subscription_stats WHERE subname = $1`,
      [name],
    );
    const errors = Number(rows[0]?.errors ?? 0);
    if (errors > 0) throw new Error(`the subscription on the target reports ${errors} errors (its server log says which): the tenant's schema changed during the move, or the source went away mid-stream (a restart)`);
  }

  private async lag(ctx: Ctx, lsn: string | null): Promise<{ lag: number; reached: boolean }> {
    const { rows } = await ctx.source.query<{ lag: string; reached: boolean }>(sql.slotLag, [ctx.name, lsn]);
    if (!rows[0]) throw new Error(`the move's replication slot ${ctx.name} is gone from the source`);
    return { lag: Number(rows[0].lag), reached: rows[0].reached };
  }

  // ---- cutover -------------------------------------------------------------------------------

  /**
   * Under the tenant's lock: pause the pool, stop the source's logins and sessions, let the last
   * change arrive (ONLINE) or copy everything (OFFLINE), copy the sequences, compare the rows,
   * open the target, and commit (one control-database transaction). Past the cutover timeout,
   * before the commit: undone, the source serves again (CutoverTimeout).
   */
  private async cutover(ctx: Ctx): Promise<void> {
    const { source, target, tenant, progress } = ctx;
    const db = tenant.databaseName;
    const online = ctx.move.mode === 'ONLINE';
    const roles = progress.roles ?? [];
    const loginRoles = roles.filter((r) => r.login).map((r) => r.name);
    const allRoles = roles.map((r) => r.name);
    // The connections the cutover reads and writes through are opened before the pause starts.
    await source.withDatabase(db, (src) => target.withDatabase(db, async (dst) => {
    await Promise.all([src.query('SET statement_timeout = 0'), dst.query('SET statement_timeout = 0')]);
    await this.p.locks.underTenantLock(tenant, async () => {
      const timeoutMs = ctx.options.cutoverTimeoutSeconds * 1000;
      const deadline = Date.now() + timeoutMs;
      const inTime = (what: string) => {
        if (online && Date.now() > deadline) throw new CutoverTimeout(`the cutover took longer than ${ctx.options.cutoverTimeoutSeconds} s (${what}); undone: the tenant serves from ${source.name} as before`);
      };
      // Under the lock: the tenant is still one that can be served (nothing deprovisioned it meanwhile).
      const now = await this.p.db.tenant.findUniqueOrThrow({ where: { id: tenant.id } });
      if (now.status !== 'ACTIVE' && now.status !== 'SUSPENDED') throw new UserError('MOVE_FAILED', `tenant ${tenant.slug} became ${now.status} during the move`);
      progress.cutoverStartedAt = new Date().toISOString();
      await this.record(ctx);
      await recordAuditEvent(this.p.db, this.actor(ctx), { category: 'move', action: 'move.cutover', tenant, subject: ctx.move.id, metadata: { mode: ctx.move.mode, lagBytes: progress.lagBytes ?? null } });
      const pausedAt = Date.now();
      const phases: Record<string, number> = (progress.cutoverPhases = {});
      const phase = (name: string) => (phases[name] = Date.now() - pausedAt);
      let targetOpen = false;
      let commitSent = false;
      try {
        await this.p.pooler?.pauseTenantPool(db, Math.max(1000, deadline - Date.now()));
        phase('paused');
        for (const role of loginRoles) await source.query(sql.setLogin(role, false));
        await source.query(sql.terminateRoleSessions, [allRoles]);
        for (;;) {
          if (!(await source.query<{ n: number }>(sql.countRoleSessions, [allRoles])).rows[0]!.n) break;
          inTime('ending the tenant\'s sessions on the source');
          await sleep(20);
        }
        phase('sessionsEnded');
        await this.p.failpoints.hit('move.cutover:paused', { tenantSlug: tenant.slug });
        if (online) {
          const lsn = (await src.query<{ lsn: string }>(sql.markWal)).rows[0]!.lsn;
          for (;;) {
            await this.p.failpoints.hit('move.cutover:wait', { tenantSlug: tenant.slug });
            if ((await dst.query<{ reached: boolean }>(sql.subscriptionReceived, [ctx.name, lsn])).rows[0]?.reached) break;
            inTime('waiting for the last change to reach the target');
            await sleep(10);
          }
          phase('lastChangeArrived');
          progress.sequencesCopied = await this.copySequences(src, dst);
          phase('sequencesCopied');
        } else {
          const tools = await dumpToolsFor((await source.identity()).serverVersionNum, (await target.identity()).serverVersionNum, this.p.dumpToolDirs);
          await dumpAndRestore(tools, source.url, target.url, db);
          await this.p.pooler?.allowPoolerLogin(target, db);
          await this.refreshMaterializedViews(ctx);
        }
        progress.rowCounts = await this.compareCounts(ctx, src, dst);
        phase('counted');
        inTime('comparing row counts');
        for (const role of loginRoles) await target.query(sql.setLogin(role, true));
        targetOpen = true;
        inTime('opening the target');
        commitSent = true;
        await this.p.db.$transaction(async (tx) => {
          await tx.tenant.update({ where: { id: tenant.id }, data: { clusterId: target.id } });
          ctx.move = await tx.tenantMove.update({ where: { id: ctx.move.id }, data: { step: 'COMMITTED', progress: progress as Prisma.InputJsonValue } });
          phase('committing');
          await recordAuditEvent(tx, this.actor(ctx), {
            category: 'move',
            action: 'move.committed',
            tenant,
            subject: ctx.move.id,
            metadata: { from: source.name, to: target.name, rowCounts: progress.rowCounts ?? {}, sequences: progress.sequencesCopied ?? null },
          });
        });
        await this.p.failpoints.hit('move.cutover:committed', { tenantSlug: tenant.slug });
        this.told(ctx);
      } catch (err) {
        // The commit may have happened (its answer was lost): reopening the source now could take
        // writes that the committed move leaves behind. Whether it did is read back (runClaimed).
        if (commitSent) throw new CommitOutcomeUnknown(`the cutover's commit may not have happened: ${(err as Error).message}`, { cause: err });
        // Before the commit point: the source serves again, as before the cutover.
        if (targetOpen) for (const role of loginRoles) await target.query(sql.setLogin(role, false)).catch(() => undefined);
        for (const role of loginRoles) await source.query(sql.setLogin(role, true)).catch((e) => this.p.logger.error({ err: e, role }, 'giving the login back on the source failed'));
        await this.p.pooler?.resumeTenantPool(db).catch((e) => this.p.logger.error({ err: e }, 'resuming the pool failed'));
        throw err;
      }
      await this.p.failpoints.hit('move.after:COMMITTED', { tenantSlug: tenant.slug });
      await this.p.pooler?.repointTenantPool(tenant.id);
      await this.p.pooler?.resumeTenantPool(db);
      ctx.repointed = true;
      progress.pauseMs = Date.now() - pausedAt;
      phase('resumed');
      await this.record(ctx);
    });
    }));
  }

  /** Logical replication does not carry sequences: each one's state is set on the target. */
  private async copySequences(src: pg.Client, dst: pg.Client): Promise<number> {
    const seqs = (await src.query<{ schema: string; name: string; last_value: string | null; start_value: string }>(sql.sequenceValues)).rows;
    // One statement, committed with synchronous_commit on: its flush also makes durable every change the apply worker committed before it.
    await dst.query(['BEGIN', 'SELECT pg_catalog.txid_current()', ...seqs.map((s) => sql.setSequence(s.schema, s.name, s.last_value ?? s.start_value, s.last_value !== null)), 'COMMIT'].join(';\n'));
    return seqs.length;
  }

  /** Rows per table on both sides (their tables at once, in parallel); a difference stops the move. */
  private async compareCounts(ctx: Ctx, src: pg.Client, dst: pg.Client): Promise<Record<string, number>> {
    const tables = (await src.query<{ schema: string; name: string; persistence: string }>(sql.userTables)).rows.filter((t) => !(t.persistence === 'u' && ctx.move.mode === 'ONLINE'));
    // One statement per side: every table's count in one round trip.
    const count = async (c: pg.Client) => {
      if (!tables.length) return {} as Record<string, number>;
      const { rows } = await c.query<{ k: string; n: string }>(tables.map((t) => sql.countRowsAs(`${t.schema}.${t.name}`, t.schema, t.name)).join(' UNION ALL '));
      return Object.fromEntries(rows.map((r) => [r.k, Number(r.n)])) as Record<string, number>;
    };
    const [a, b] = await Promise.all([count(src), count(dst)]);
    const differ = Object.keys(a).filter((k) => a[k] !== b[k]);
    if (differ.length) throw new UserError('MOVE_FAILED', `row counts differ between source and target: ${differ.map((k) => `${k} ${a[k]} vs ${b[k] ?? 'missing'}`).join(', ')}`);
    return a;
  }

  // ---- finish and roll back ------------------------------------------------------------------

  /** After the commit point: pool repointed and resumed, replication removed, the source database renamed and kept. Re-runnable. */
  private async finish(ctx: Ctx): Promise<void> {
    const { source, target, tenant, progress } = ctx;
    const db = tenant.databaseName;
    if (ctx.move.step === 'COMMITTED') {
      // A server that died after the commit left the pool paused (or pointing at the source).
      if (!ctx.repointed) {
        await this.p.pooler?.repointTenantPool(tenant.id);
        await this.p.pooler?.resumeTenantPool(db);
      }
      await this.removeReplication(ctx);
      const retained = (progress.retainedName ??= sql.retainedDatabaseName(db, ctx.move.id));
      // Not there by its name: renamed already, by a run that stopped after the rename.
      if ((await source.query(sql.databaseExists, [db])).rowCount) {
        if ((await source.query(sql.databaseExists, [retained])).rowCount) throw new Error(`both ${db} and ${retained} exist on ${source.name}: the source database was not retained`);
        await source.query(sql.closeDatabase(db));
        await source.query(sql.terminateDatabaseSessions, [db]);
        await source.query(sql.renameDatabase(db, retained));
      }
      await this.p.failpoints.hit('move.after:CLEANUP', { tenantSlug: tenant.slug });
      const retainedUntil = new Date(Date.now() + ctx.options.retainSourceHours * 3600_000);
      await this.p.db.$transaction(async (tx) => {
        ctx.move = await tx.tenantMove.update({
          where: { id: ctx.move.id },
          data: { step: 'CLEANUP', status: 'SUCCEEDED', finishedAt: new Date(), retainedDatabase: retained, retainedUntil, progress: progress as Prisma.InputJsonValue },
        });
        await recordAuditEvent(tx, this.actor(ctx), {
          category: 'move',
          action: 'move.finished',
          tenant,
          subject: ctx.move.id,
          metadata: { from: source.name, to: target.name, retainedDatabase: retained, retainedUntil: retainedUntil.toISOString(), pauseMs: progress.pauseMs ?? null },
        });
      });
      this.told(ctx);
      // The inventory takes a look at the tenant on its new cluster (its pool is already repointed).
      await this.p.changes?.committed(tenant.id, { inventory: true }).catch(() => undefined);
      if (ctx.options.retainSourceHours === 0) await this.dropExpiredRetained();
    }
  }

  /** The subscription (with its slot and origin) on the target, the publication and any slot left on the source. */
  private async removeReplication(ctx: Ctx): Promise<void> {
    const { source, target, tenant, name } = ctx;
    const db = tenant.databaseName;
    if ((await target.query(sql.databaseExists, [db])).rowCount) {
      await target.withDatabase(db, async (c) => {
        if (!(await c.query(sql.subscriptionExists, [name])).rowCount) return;
        try {
          await c.query(sql.dropSubscription(name)); // drops its slot on the source too
        } catch (err) {
          // The source cannot be reached: drop it here without its slot (dropped below, or by hand).
          this.p.logger.warn({ err, move: ctx.move.id }, 'dropping the subscription with its slot failed; detaching the slot');
          await c.query(sql.disableSubscription(name));
          await c.query(sql.detachSubscriptionSlot(name));
          await c.query(sql.dropSubscription(name));
        }
      });
    }
    const { subscriptionOid, subscriberSystemId } = ctx.progress;
    const slots = await source.query<{ slot_name: string; active_pid: number | null }>(sql.moveSlots, [
      name,
      subscriptionOid && subscriberSystemId ? sql.tableSyncSlotPattern(subscriptionOid, subscriberSystemId) : null,
    ]);
    for (const s of slots.rows) {
      if (s.active_pid) await source.query('SELECT pg_catalog.pg_terminate_backend($1)', [s.active_pid]);
      for (let i = 0; i < 50; i++) {
        try {
          await source.query(sql.dropSlot, [s.slot_name]);
          break;
        } catch (err) {
          if (!/is active/.test((err as Error).message) || i === 49) throw err;
          await sleep(100);
        }
      }
    }
    if ((await source.query(sql.databaseExists, [db])).rowCount) {
      await source.withDatabase(db, (c) => c.query(sql.dropPublication(name)));
    }
  }

  /**
   * rollBack, or, when that cannot finish (a server it needs is down or restarting), the move
   * left RUNNING with why it is being undone: its `error` says so at once, and each recovery
   * pass tries the rollback again and ends the move with this status and reason.
   */
  private async undo(ctx: Ctx, status: 'FAILED' | 'ROLLED_BACK', reason: string): Promise<void> {
    try {
      await this.rollBack(ctx, status, reason);
    } catch (err) {
      const why = (err as Error).message;
      this.p.logger.warn({ err, move: ctx.move.id, status, reason }, 'the move\'s rollback could not finish; recovery tries again');
      ctx.progress.undoing = { status, reason };
      ctx.move = await this.p.db.tenantMove.update({
        where: { id: ctx.move.id },
        data: { error: `${reason} (being rolled back: ${why}; recovery tries again)`.slice(0, 2000), progress: ctx.progress as Prisma.InputJsonValue },
      });
      this.told(ctx);
    }
  }

  /**
   * Before the commit point: everything the move made on the target dropped, the source's
   * logins as they were, the pool resumed. The move ends `status` with the reason.
   */
  private async rollBack(ctx: Ctx, status: 'FAILED' | 'ROLLED_BACK', reason: string): Promise<void> {
    const { source, target, tenant, progress } = ctx;
    const db = tenant.databaseName;
    const fresh = await this.p.db.tenant.findUniqueOrThrow({ where: { id: tenant.id } });
    if (fresh.clusterId === target.id) throw new Error(`move ${ctx.move.id}: the tenant is on the target already; not rolling back`);
    for (const r of progress.roles ?? []) if (r.login) await source.query(sql.setLogin(r.name, true)).catch(() => undefined);
    await this.p.pooler?.resumeTenantPool(db);
    await this.removeReplication(ctx);
    await target.query(sql.dropDatabase(db));
    const made = (await target.query<{ rolname: string }>(sql.roleNames, [tenant.roleName, readOnlyRoleName(tenant.roleName, '')])).rows.map((r) => r.rolname);
    for (const name of new Set([...(progress.roles ?? []).map((r) => r.name), ...made])) {
      // A role a retained database of an earlier move still uses stays (it owns objects there).
      await target.query(sql.dropRole(name)).catch((err) => this.p.logger.warn({ err, role: name }, 'a role of the move was kept on the target'));
    }
    await this.p.db.$transaction(async (tx) => {
      ctx.move = await tx.tenantMove.update({ where: { id: ctx.move.id }, data: { status, error: reason, finishedAt: new Date(), progress: progress as Prisma.InputJsonValue } });
      await recordAuditEvent(tx, this.actor(ctx), {
        category: 'move',
        action: status === 'FAILED' ? 'move.failed' : 'move.rolled_back',
        tenant,
        subject: ctx.move.id,
        metadata: { step: ctx.move.step, error: reason },
      });
    });
    this.told(ctx);
    this.p.logger.warn({ move: ctx.move.id, tenant: tenant.slug, status, reason }, 'move rolled back');
  }

  /** Retained source databases past their time: dropped, with the roles left on the source (unless the tenant lives there again). */
  async dropExpiredRetained(): Promise<void> {
    const due = await this.p.db.tenantMove.findMany({ where: { status: 'SUCCEEDED', retainedUntil: { lte: new Date() } }, include: { tenant: true } });
    for (const move of due) {
      try {
        const source = await this.p.clusters.get(move.sourceClusterId);
        if (move.retainedDatabase) await source.query(sql.dropDatabase(move.retainedDatabase));
        if (move.tenant.clusterId !== move.sourceClusterId) {
          for (const r of (move.progress as MoveProgress).roles ?? []) await source.query(sql.dropRole(r.name));
        }
        await this.p.db.$transaction(async (tx) => {
          await tx.tenantMove.update({ where: { id: move.id }, data: { retainedUntil: null } });
          await recordAuditEvent(tx, { actor: `move ${move.id}`, correlationId: move.id }, {
            category: 'move',
            action: 'move.retained-dropped',
            tenant: move.tenant,
            subject: move.retainedDatabase,
            metadata: { cluster: source.name },
          });
        });
      } catch (err) {
        this.p.logger.error({ err, move: move.id }, 'dropping a retained source database failed');
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A new session holding the lock of move `id` (which nobody else knows yet). */
async function claimMove(controlUrl: string, id: string): Promise<pg.Client> {
  const client = await openCatalogSession(controlUrl, { applicationName: 'tenantry-move' });
  try {
    if (!(await trySessionLock(client, moveLockKey(id)))) throw new Error(`the lock of the new move ${id} is held elsewhere`);
    return client;
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}
