import { v7 as uuidv7 } from 'uuid';
import semver from 'semver';
import type { Operation, OperationItem, Prisma } from '../../generated/prisma/client.js';
import { OperationItemStatus, OperationKind, type OperationStatus } from '../../generated/prisma/enums.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { rowsGrouped, rowsInOrder } from '../../platform/db/rows-in-order.js';
import { withCatalogSession } from '../../platform/db/session-settings.js';
import { UserError } from '../../platform/errors.js';
import type { EventBus } from '../../platform/events/event-bus.js';
import type { Failpoints } from '../../platform/failpoints.js';
import { operationLockKey } from '../../platform/locks/lock-names.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import { trySessionLock } from '../../platform/locks/session-locks.js';
import type { Logger } from '../../platform/logger.js';
import { PeriodicTask } from '../../platform/periodic-task.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import type { ClusterRegistry } from '../clusters/index.js';
import { availableExtensions, extensionReport, type TenantExtensions } from '../extensions/index.js';
import { DEFAULT_TEMPLATE, defaultTarget, failureCauseOf, type FailureCause, type SchemaUpgrades, type TemplateCatalog } from '../templates/index.js';
import { TENANT_COMPONENT, type TenantAccess, type TenantSecurity } from '../tenants/index.js';
import { runOrder, validateCanaryChoice } from './canary.js';

export type { Operation, OperationItem };
/** Prisma's enums, for the GraphQL enum types and callers naming a kind or status. */
export { OperationItemStatus, OperationKind };

/** How a tenant moves off a cluster being drained (moves and placement, wired in src/server.ts). */
export interface ClusterEvacuation {
  /**
   * Moves the tenant to a cluster placement picks (never `fromClusterId`) and resolves once the
   * move has SUCCEEDED, with what was done; a refused, failed or rolled-back move throws (UserError).
   */
  moveOff(op: OperationContext, p: { slug: string; fromClusterId: string; mode: MoveMode }, signal: AbortSignal): Promise<string>;
}

export type MoveMode = 'ONLINE' | 'OFFLINE';

export interface StartFleetOperationInput {
  kind: OperationKind;
  /** DRAIN_CLUSTER: the cluster whose tenants move away (a UUID; null: none), and how they move (default ONLINE). */
  clusterId?: string | null;
  mode?: MoveMode | null;
  /** Tenants of this template (default "default"). */
  template?: string | null;
  /** UPGRADE_SCHEMAS: the version to reach (default: each tenant's newest of its major). */
  targetVersion?: string | null;
  concurrency?: number | null;
  /** How many tenants must succeed first, before the rest (see canary.ts). Default: as many as picked, else 3. */
  canarySize?: number | null;
  /** Slugs of the tenants to go first, as canaries, in this order. */
  canary?: readonly string[] | null;
  exclude?: readonly string[] | null;
}

/** What an operation keeps of its input. */
export interface OperationParams {
  template: string;
  targetVersion: string | null;
  /** Canaries the operator picked, and the tenants it left out (absent on operations started before they existed). */
  canary?: string[];
  exclude?: string[];
  /** DRAIN_CLUSTER: the cluster drained, and the move mode. */
  clusterId?: string;
  mode?: MoveMode;
}

/** A page of per-tenant results: these statuses (null or empty: all), the first `first` after `afterPosition`. */
interface OperationResultsPage {
  statuses: readonly OperationItemStatus[] | null;
  first: number;
  afterPosition: number | null;
}

const MAX_CONCURRENCY = 16;

/** Operations with any of these statuses and kinds (empty or absent: any). */
export interface OperationFilter {
  status?: OperationStatus[] | null;
  kind?: OperationKind[] | null;
}

function matching(filter: OperationFilter | null | undefined): Prisma.OperationWhereInput {
  return {
    AND: [filter?.status?.length ? { status: { in: filter.status } } : {}, filter?.kind?.length ? { kind: { in: filter.kind } } : {}],
  };
}

/**
 * Fleet-wide schema upgrades and extension updates as persisted operations: one row per
 * operation and per tenant, run with bounded concurrency after a canary, each tenant under
 * its own lock (the single-tenant code path), over direct connections. A server that stops
 * leaves the rows behind; whichever server next holds the operation's advisory lock
 * (at start, or on the periodic check) resumes it where it stopped.
 */
export class FleetOperations {
  private readonly running = new Map<string, Promise<void>>();
  private stopping = false;
  /** Aborted by stop(): an item waiting on long work (a drain's move) lets go, unrecorded, and is run again on resume. */
  private readonly stopped = new AbortController();
  private resumer: PeriodicTask | undefined;

  constructor(
    private readonly p: {
      db: ControlClient;
      logger: Logger;
      /** The control database's URL: each running operation holds its advisory lock on a session of its own. */
      controlUrl: string;
      clusters: ClusterRegistry;
      catalog: TemplateCatalog;
      locks: TenantLocks;
      failpoints: Failpoints;
      /** Progress goes out on the bus (the operation subscription, on every replica). */
      events: EventBus;
      access: TenantAccess;
      upgrades: SchemaUpgrades;
      tenantExtensions: TenantExtensions;
      security: TenantSecurity;
      /** DRAIN_CLUSTER's moves; without it (tests of other kinds) a drain is refused. */
      evacuation?: ClusterEvacuation;
    },
  ) {}

  /** Operations by id (one query), in the order of `ids`. */
  async byIds(ids: readonly string[]): Promise<(Operation | null)[]> {
    const rows = await this.p.db.operation.findMany({ where: { id: { in: [...ids] } } });
    return rowsInOrder(ids, rows, (r) => r.id);
  }

  /** A page of operations, newest first (ids are UUIDv7: their order is their creation order); `after`/`before` are ids. */
  list(page: { filter?: OperationFilter | null; after?: string | null; before?: string | null; limit: number; inverted: boolean }): Promise<Operation[]> {
    return this.p.db.operation.findMany({
      where: { AND: [matching(page.filter), page.after ? { id: { lt: page.after } } : {}, page.before ? { id: { gt: page.before } } : {}] },
      orderBy: { id: page.inverted ? 'asc' : 'desc' },
      take: page.limit,
    });
  }

  /** How many operations list() gives over all its pages. */
  count(filter?: OperationFilter | null): Promise<number> {
    return this.p.db.operation.count({ where: matching(filter) });
  }

  /**
   * A page of each operation's per-tenant results, in run order: at most `first` per operation
   * after `afterPosition`, with the given statuses. One query for a whole page of operations (a
   * window over operation_items, served by its (operation_id, position) index).
   */
  async resultsByIds(operationIds: readonly string[], page: OperationResultsPage): Promise<OperationItem[][]> {
    if (page.first <= 0 || operationIds.length === 0) return operationIds.map(() => []);
    const statuses = page.statuses?.length ? [...page.statuses] : Object.values(OperationItemStatus);
    const rows = await this.p.db.$queryRaw<OperationItem[]>`
      SELECT operation_id::text AS "operationId", tenant_id::text AS "tenantId", tenant_slug AS "tenantSlug", position, status::text AS status,
             message, from_version AS "fromVersion", to_version AS "toVersion", started_at AS "startedAt", finished_at AS "finishedAt",
             canary, failure_cause::text AS "failureCause"
      FROM (SELECT i.*, row_number() OVER (PARTITION BY i.operation_id ORDER BY i.position) AS n
            FROM operation_items i
            WHERE i.operation_id = ANY(${[...operationIds]}::uuid[]) AND i.position > ${page.afterPosition ?? -1}
              AND i.status::text = ANY(${statuses}::text[])) ranked
      WHERE n <= ${page.first}
      ORDER BY position`;
    return rowsGrouped(operationIds, rows, (r) => r.operationId);
  }

  /** Progress of one operation as it is published (after every tenant, and when it starts and finishes), from any replica. */
  progress(operationId: string): AsyncIterable<unknown> {
    return this.p.events.rowChanges('operation', operationId);
  }

  async start(op: OperationContext, input: StartFleetOperationInput): Promise<Operation> {
    const { db, catalog } = this.p;
    const template = input.template ?? DEFAULT_TEMPLATE;
    const drain = input.kind === 'DRAIN_CLUSTER' ? await this.drainTarget(input) : null;
    if (!drain && !catalog.get(template)) throw new UserError('TEMPLATE_NOT_FOUND', `no template named ${template}`, 'template');
    if (input.targetVersion && !catalog.resolve(template, input.targetVersion)) {
      throw new UserError('TEMPLATE_NOT_FOUND', `template ${template} has no version ${input.targetVersion}`, 'targetVersion');
    }
    const concurrency = input.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new UserError('INVALID_INPUT', `concurrency must be between 1 and ${MAX_CONCURRENCY}`, 'concurrency');
    }
    if (input.canarySize != null && (!Number.isInteger(input.canarySize) || input.canarySize < 0)) throw new UserError('INVALID_INPUT', 'canarySize must be 0 or more', 'canarySize');

    const where: Prisma.TenantWhereInput = drain
      ? { clusterId: drain.clusterId, status: { in: ['ACTIVE', 'SUSPENDED'] } }
      : input.kind === 'SECURE_TENANTS'
        ? { status: { in: ['ACTIVE', 'SUSPENDED'] }, securedAt: null }
        : { status: 'ACTIVE', templateName: template };
    const candidates = await db.tenant.findMany({ where, orderBy: { slug: 'asc' }, select: { id: true, slug: true, templateVersion: true } });
    // Tenants the records show at the target already are done before anything is opened.
    const settled = await this.alreadyDone(input.kind, template, input.targetVersion ?? null, candidates.map((t) => t.id));
    const settledIds = new Set(settled.keys());
    const choice = validateCanaryChoice(input, candidates, settledIds);
    const tenants = await runOrder(db, input.kind, candidates, choice, settledIds);
    const settledHere = tenants.filter((t) => settledIds.has(t.id)).length;
    const canarySize = Math.min(input.canarySize ?? (choice.picked.length || 3), tenants.length - settledHere);
    const params: OperationParams = { template, targetVersion: input.targetVersion ?? null, canary: choice.picked, exclude: choice.excluded, ...(drain ?? {}) };
    const id = uuidv7();
    const operation = await db.$transaction(async (tx) => {
      // A cluster being drained takes no new tenants from the moment its drain is recorded.
      if (drain) await tx.cluster.update({ where: { id: drain.clusterId }, data: { status: 'DRAINING' } });
      const created = await tx.operation.create({
        data: { id, kind: input.kind, params: { ...params }, total: tenants.length, canarySize, concurrency, createdBy: op.actor },
      });
      const now = new Date();
      await tx.operationItem.createMany({
        data: tenants.map((t, position) => {
          const done = settled.get(t.id);
          return done
            ? { operationId: id, tenantId: t.id, tenantSlug: t.slug, position, fromVersion: t.templateVersion, toVersion: t.templateVersion, status: 'SUCCEEDED' as const, message: done, startedAt: now, finishedAt: now }
            : { operationId: id, tenantId: t.id, tenantSlug: t.slug, position, fromVersion: t.templateVersion, canary: position < canarySize };
        }),
      });
      if (settledHere > 0) await tx.operation.update({ where: { id }, data: { done: settledHere } });
      await recordAuditEvent(tx, op, {
        category: 'operation',
        action: 'operation.started',
        subject: id,
        metadata: { kind: input.kind, template, targetVersion: input.targetVersion ?? null, total: tenants.length, concurrency, canarySize, canary: choice.picked, exclude: choice.excluded, ...(drain ?? {}) },
      });
      if (drain) {
        await recordAuditEvent(tx, op, { category: 'cluster', action: 'cluster.drain.started', subject: drain.clusterId, metadata: { operationId: id, tenants: tenants.length, mode: drain.mode } });
      }
      return created;
    });
    this.launch(id);
    return operation;
  }

  /** DRAIN_CLUSTER's cluster (NOT_FOUND unless registered) and move mode; refused without moves wired. */
  private async drainTarget(input: StartFleetOperationInput): Promise<{ clusterId: string; mode: MoveMode }> {
    if (!this.p.evacuation) throw new UserError('INVALID_INPUT', 'this server cannot move tenants', 'clusterId');
    const cluster = input.clusterId ? await this.p.db.cluster.findUnique({ where: { id: input.clusterId } }) : null;
    if (!cluster) throw new UserError('NOT_FOUND', `no cluster ${input.clusterId ?? ''}`, 'id');
    const open = await this.p.db.operation.findFirst({ where: { kind: 'DRAIN_CLUSTER', status: { in: ['PENDING', 'RUNNING'] }, params: { path: ['clusterId'], equals: cluster.id } } });
    if (open) throw new UserError('INVALID_STATE', `cluster ${cluster.name} is being drained already (operation ${open.id})`, 'id');
    return { clusterId: cluster.id, mode: input.mode ?? 'ONLINE' };
  }

  /**
   * Tenants provisioned before Tenantry owned tenant databases are brought under the
   * ownership model by the fleet machinery, not by hand: at start, when there are any and no
   * securing operation is under way, one is started (audited like any other).
   */
  async secureLegacyTenants(): Promise<Operation | null> {
    const legacy = await this.p.db.tenant.count({ where: { status: { in: ['ACTIVE', 'SUSPENDED'] }, securedAt: null } });
    if (legacy === 0) return null;
    const open = await this.p.db.operation.findFirst({ where: { kind: 'SECURE_TENANTS', status: { in: ['PENDING', 'RUNNING'] } } });
    if (open) return null;
    this.p.logger.info({ tenants: legacy }, 'securing tenants provisioned before Tenantry owned tenant databases');
    return this.start({ actor: 'system', correlationId: 'startup' }, { kind: 'SECURE_TENANTS', concurrency: 4, canarySize: 0 });
  }

  /** Picks up operations nobody is running (left by a stopped server), now and every `intervalMs`. */
  resumeUnfinished(intervalMs: number): void {
    if (this.resumer || this.stopping) return;
    this.resumer = new PeriodicTask({
      name: 'operation resume',
      intervalMs,
      logger: this.p.logger,
      run: async () => {
        try {
          const open = await this.p.db.operation.findMany({ where: { status: { in: ['PENDING', 'RUNNING'] } }, select: { id: true } });
          for (const { id } of open) this.launch(id);
        } catch (err) {
          this.p.logger.error({ err }, 'resuming operations failed');
        }
      },
    });
    this.resumer.start();
  }

  /** Stops taking new tenants, lets the ones in flight finish, and lets go of the operations (another server may resume them). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    await this.resumer?.stop();
    await Promise.allSettled([...this.running.values()]);
  }

  private launch(id: string): void {
    if (this.running.has(id) || this.stopping) return;
    // Outlives the request that started it: never inside that request's locks.
    const run = this.p.locks
      .detached(() => this.run(id))
      .catch((err) => this.p.logger.error({ err, operation: id }, 'operation failed'))
      .finally(() => this.running.delete(id));
    this.running.set(id, run);
  }

  private async run(id: string): Promise<void> {
    const { db, logger, events } = this.p;
    // The operation's lock lives as long as this session: a server that dies lets go of it.
    await withCatalogSession(this.p.controlUrl, { applicationName: 'tenantry-operation' }, async (lock) => {
      if (!(await trySessionLock(lock, operationLockKey(id)))) return; // another server runs it
      let operation = await db.operation.findUniqueOrThrow({ where: { id } });
      if (operation.status !== 'PENDING' && operation.status !== 'RUNNING') return;
      // Items that were in flight when a server stopped are run again: every step is idempotent.
      await db.operationItem.updateMany({ where: { operationId: id, status: 'RUNNING' }, data: { status: 'PENDING', startedAt: null } });
      operation = await db.operation.update({ where: { id }, data: { status: 'RUNNING', startedAt: operation.startedAt ?? new Date() } });
      logger.info({ operation: id, kind: operation.kind }, 'running operation');
      events.publishRowChange('operation', id);
      if (!(await this.runCanaries(operation))) return;
      await this.runItems(operation, await db.operationItem.findMany({ where: { operationId: id, status: 'PENDING' }, orderBy: { position: 'asc' } }));
      if (this.stopping) return;
      const failed = await db.operationItem.count({ where: { operationId: id, status: 'FAILED' } });
      await this.finish(id, failed > 0 ? 'COMPLETED_WITH_ERRORS' : 'SUCCEEDED', null);
    });
  }

  /**
   * Runs canaries until `canarySize` of them succeeded or no tenant is left to try. A canary
   * that failed because of its own objects is replaced by the next pending tenant (by position);
   * one that failed because of the step stops the operation: FAILED, the rest SKIPPED. Works from
   * the rows alone, so a resumed operation carries on where it stopped. False when the rest must
   * not run (stopped, or stopping).
   */
  private async runCanaries(operation: Operation): Promise<boolean> {
    const { db } = this.p;
    const id = operation.id;
    for (;;) {
      if (this.stopping) return false;
      const canaries = await db.operationItem.findMany({ where: { operationId: id, canary: true }, orderBy: { position: 'asc' } });
      const broken = canaries.find((c) => c.status === 'FAILED' && c.failureCause !== 'TENANT');
      if (broken) {
        await db.operationItem.updateMany({ where: { operationId: id, status: 'PENDING' }, data: { status: 'SKIPPED', message: 'not run: the canary failed' } });
        await this.finish(id, 'FAILED', `the canary failed on ${broken.tenantSlug} (${broken.message ?? 'no message'}); the step itself failed there, not the tenant's own objects, so the rest was not run`);
        return false;
      }
      // Replacing canaries has a bound: a step broken in a way that looks like each tenant's own
      // doing (an object it creates that the template already made, say) must not run through
      // the whole fleet as an endless canary phase.
      const ownFailures = canaries.filter((c) => c.status === 'FAILED');
      if (ownFailures.length > Math.max(operation.canarySize, 1)) {
        await db.operationItem.updateMany({ where: { operationId: id, status: 'PENDING' }, data: { status: 'SKIPPED', message: 'not run: too many canaries failed' } });
        await this.finish(id, 'FAILED', `${ownFailures.length} canaries failed, each for what looks like its own objects (${ownFailures.map((c) => c.tenantSlug).join(', ')}); so many suggest the step itself, so the rest was not run`);
        return false;
      }
      const waiting = canaries.filter((c) => c.status === 'PENDING');
      const missing = operation.canarySize - canaries.filter((c) => c.status === 'SUCCEEDED').length - waiting.length;
      if (missing > 0) {
        // In place of canaries that failed for their own reasons: the next tenants in the run order.
        const next = await db.operationItem.findMany({ where: { operationId: id, canary: false, status: 'PENDING' }, orderBy: { position: 'asc' }, take: missing });
        if (next.length) await db.operationItem.updateMany({ where: { operationId: id, tenantId: { in: next.map((n) => n.tenantId) } }, data: { canary: true } });
        waiting.push(...next);
      }
      if (waiting.length === 0) return true;
      await this.runItems(operation, waiting);
    }
  }

  /**
   * Runs items with the operation's concurrency; a failure is that tenant's alone. When an item's
   * own bookkeeping fails (the control database), no worker takes another item, and this returns
   * (throwing) only once every item in flight has ended: the run lets go of the operation's lock
   * with nothing of it still running, so whoever resumes it never runs an item twice at once.
   */
  private async runItems(operation: Operation, items: OperationItem[]): Promise<void> {
    const queue = [...items];
    let broken = false;
    const worker = async () => {
      for (let item = queue.shift(); item && !this.stopping && !broken; item = queue.shift()) {
        await this.runItem(operation, item).catch((err: unknown) => {
          broken = true;
          throw err;
        });
      }
    };
    const ended = await Promise.allSettled(Array.from({ length: Math.min(operation.concurrency, queue.length) }, worker));
    const failed = ended.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async runItem(operation: Operation, item: OperationItem): Promise<void> {
    const { db, logger, events } = this.p;
    const where = { operationId_tenantId: { operationId: operation.id, tenantId: item.tenantId } };
    await db.operationItem.update({ where, data: { status: 'RUNNING', startedAt: new Date() } });
    const op: OperationContext = { actor: `operation ${operation.id}`, correlationId: operation.id };
    const params = operation.params as unknown as OperationParams;
    let outcome: { status: 'SUCCEEDED' | 'FAILED'; message: string | null; failureCause?: FailureCause; fromVersion?: string; toVersion?: string };
    try {
      await this.p.failpoints.hit('operation.item', { tenantSlug: item.tenantSlug, detail: operation.kind });
      if (operation.kind === 'UPGRADE_SCHEMAS') {
        const r = await this.p.upgrades.upgradeTenantSchema(op, { slug: item.tenantSlug, targetVersion: params.targetVersion });
        outcome = r.failed
          ? { status: 'FAILED', message: `step ${r.failed.version} failed: ${r.failed.message}`, failureCause: r.failed.cause, fromVersion: r.fromVersion, toVersion: r.toVersion }
          : { status: 'SUCCEEDED', message: r.applied.length ? `applied ${r.applied.join(', ')}` : 'already at the target', fromVersion: r.fromVersion, toVersion: r.toVersion };
      } else if (operation.kind === 'DRAIN_CLUSTER') {
        const message = await this.p.evacuation!.moveOff(op, { slug: item.tenantSlug, fromClusterId: params.clusterId!, mode: params.mode ?? 'ONLINE' }, this.stopped.signal);
        outcome = { status: 'SUCCEEDED', message };
      } else if (operation.kind === 'SECURE_TENANTS') {
        const changes = await this.p.access.withTenant(item.tenantSlug, () => true, async (tenant, cluster) =>
          tenant.securedAt ? [] : this.p.security.secureTenant(op, cluster, tenant),
        );
        outcome = { status: 'SUCCEEDED', message: changes.length ? changes.join('; ') : 'already secured' };
      } else {
        const r = await this.p.tenantExtensions.updateTenantExtensions(op, { slug: item.tenantSlug });
        const unavailable = r.after.filter((e) => e.status === 'UNAVAILABLE').map((e) => e.name);
        const done = r.changes.length ? r.changes.join('; ') : 'nothing to do';
        if (unavailable.length) outcome = { status: 'FAILED', message: `unavailable on the server: ${unavailable.join(', ')}`, failureCause: 'STEP' };
        else if (r.problems.length) outcome = { status: 'FAILED', message: [...r.problems.map((p) => p.message), ...(r.changes.length ? [`done: ${done}`] : [])].join('; '), failureCause: 'TENANT' };
        else outcome = { status: 'SUCCEEDED', message: done };
      }
    } catch (err) {
      // Stopping: the item stays RUNNING, and whoever resumes the operation runs it again (its work goes on meanwhile).
      if (this.stopped.signal.aborted && !(err instanceof UserError)) return;
      if (!(err instanceof UserError)) logger.error({ err, operation: operation.id, tenant: item.tenantSlug }, 'operation item failed');
      outcome = { status: 'FAILED', message: (err as Error).message.slice(0, 500), failureCause: failureCauseOf(err) };
    }
    // Past the item's work, before its record: where a control database that fails costs the record only.
    await this.p.failpoints.hit('operation.item.recorded', { tenantSlug: item.tenantSlug, detail: operation.kind });
    await db.$transaction([
      db.operationItem.update({ where, data: { ...outcome, finishedAt: new Date() } }),
      db.operation.update({ where: { id: operation.id }, data: { done: { increment: 1 }, ...(outcome.status === 'FAILED' ? { failed: { increment: 1 } } : {}) } }),
    ]);
    events.publishRowChange('operation', operation.id);
  }

  private async finish(id: string, status: 'SUCCEEDED' | 'COMPLETED_WITH_ERRORS' | 'FAILED', error: string | null): Promise<void> {
    const operation = await this.p.db.operation.update({ where: { id }, data: { status, error, finishedAt: new Date() } });
    await recordAuditEvent(this.p.db, { actor: `operation ${id}`, correlationId: id }, {
      category: 'operation',
      action: 'operation.finished',
      subject: id,
      metadata: { kind: operation.kind, status, total: operation.total, done: operation.done, failed: operation.failed, error },
    });
    this.p.events.publishRowChange('operation', id);
  }

  /**
   * The tenants whose recorded state (schema version, installed extensions) shows the
   * operation has nothing to do for them, with the message their item gets: a fleet
   * already at the target costs a few control-database queries, not a connection per tenant.
   * A tenant not yet secured is never skipped (its step secures it first).
   */
  private async alreadyDone(kind: OperationKind, template: string, targetVersion: string | null, tenantIds: string[]): Promise<Map<string, string>> {
    const done = new Map<string, string>();
    if (kind === 'SECURE_TENANTS' || kind === 'DRAIN_CLUSTER' || tenantIds.length === 0) return done;
    const tenants = await this.p.db.tenant.findMany({
      where: { id: { in: tenantIds }, securedAt: { not: null } },
      select: { id: true, clusterId: true, templateName: true, templateVersion: true, schemaVersions: { select: { component: true, version: true } }, extensions: { select: { name: true, version: true } } },
    });
    const versions = this.p.catalog.get(template)?.versions ?? [];
    if (kind === 'UPGRADE_SCHEMAS') {
      for (const t of tenants) {
        const recorded = t.schemaVersions.find((v) => v.component === TENANT_COMPONENT)?.version;
        if (!recorded || !semver.valid(recorded)) continue;
        const target = targetVersion ?? defaultTarget(versions, recorded)?.version;
        if (target && semver.gte(recorded, target)) done.set(t.id, 'already at the target');
      }
      return done;
    }
    const offeredByCluster = new Map<string, Map<string, string[]>>();
    for (const clusterId of new Set(tenants.map((t) => t.clusterId))) {
      const cluster = await this.p.clusters.get(clusterId);
      const { rows } = await cluster.query<{ name: string; versions: string[] }>(availableExtensions);
      offeredByCluster.set(clusterId, new Map(rows.map((r) => [r.name, r.versions])));
    }
    for (const t of tenants) {
      const report = extensionReport(this.p.tenantExtensions.policyOf(t), new Map(t.extensions.map((e) => [e.name, e.version])), offeredByCluster.get(t.clusterId)!);
      if (report.every((e) => e.status === 'OK')) done.set(t.id, 'nothing to do');
    }
    return done;
  }
}
