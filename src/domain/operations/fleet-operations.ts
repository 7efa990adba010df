import { v7 as uuidv7 } from 'uuid';
import pg from 'pg';
import type { Operation, OperationItem } from '../../generated/prisma/client.js';
import type { OperationKind } from '../../generated/prisma/enums.js';
import { recordAuditEvent, type OperationContext } from '../audit/audit-log.js';
import type { Deps } from '../deps.js';
import { UserError } from '../errors.js';
import { updateTenantExtensions } from '../extensions/tenant-extensions.js';
import { DEFAULT_TEMPLATE } from '../templates/template-catalog.js';
import { upgradeTenantSchema } from '../templates/upgrade-tenant-schema.js';

export interface StartFleetOperationInput {
  kind: OperationKind;
  /** Tenants of this template (default "default"). */
  template?: string | null;
  /** UPGRADE_SCHEMAS: the version to reach (default: each tenant's newest of its major). */
  targetVersion?: string | null;
  concurrency?: number | null;
  /** How many tenants go first, alone; if any of them fails, the operation stops. */
  canarySize?: number | null;
}

const MAX_CONCURRENCY = 16;

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
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: Deps,
    private readonly controlUrl: string,
  ) {}

  async start(op: OperationContext, input: StartFleetOperationInput): Promise<Operation> {
    const { deps } = this;
    const template = input.template ?? DEFAULT_TEMPLATE;
    if (!deps.catalog.get(template)) throw new UserError('TEMPLATE_NOT_FOUND', `no template named ${template}`, 'template');
    if (input.targetVersion && !deps.catalog.resolve(template, input.targetVersion)) {
      throw new UserError('TEMPLATE_NOT_FOUND', `template ${template} has no version ${input.targetVersion}`, 'targetVersion');
    }
    const concurrency = input.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new UserError('INVALID_INPUT', `concurrency must be between 1 and ${MAX_CONCURRENCY}`, 'concurrency');
    }
    const canarySize = input.canarySize ?? 3;
    if (!Number.isInteger(canarySize) || canarySize < 0) throw new UserError('INVALID_INPUT', 'canarySize must be 0 or more', 'canarySize');

    const tenants = await deps.db.tenant.findMany({ where: { status: 'ACTIVE', templateName: template }, orderBy: { slug: 'asc' }, select: { id: true, slug: true, templateVersion: true } });
    const id = uuidv7();
    const operation = await deps.db.$transaction(async (tx) => {
      const created = await tx.operation.create({
        data: {
          id,
          kind: input.kind,
          params: { template, targetVersion: input.targetVersion ?? null },
          total: tenants.length,
          canarySize: Math.min(canarySize, tenants.length),
          concurrency,
          createdBy: op.actor,
        },
      });
      await tx.operationItem.createMany({
        data: tenants.map((t, position) => ({ operationId: id, tenantId: t.id, tenantSlug: t.slug, position, fromVersion: t.templateVersion })),
      });
      await recordAuditEvent(tx, op, { category: 'operation', action: 'operation.started', subject: id, metadata: { kind: input.kind, template, targetVersion: input.targetVersion ?? null, total: tenants.length, concurrency, canarySize } });
      return created;
    });
    this.launch(id);
    return operation;
  }

  /** Picks up operations nobody is running (left by a stopped server), now and every `intervalMs`. */
  resumeUnfinished(intervalMs: number): void {
    const check = async () => {
      const open = await this.deps.db.operation.findMany({ where: { status: { in: ['PENDING', 'RUNNING'] } }, select: { id: true } });
      for (const { id } of open) this.launch(id);
    };
    void check().catch((err) => this.deps.logger.error({ err }, 'resuming operations failed'));
    this.timer = setInterval(() => void check().catch((err) => this.deps.logger.error({ err }, 'resuming operations failed')), intervalMs);
    this.timer.unref();
  }

  /** Stops taking new tenants, lets the ones in flight finish, and lets go of the operations (another server may resume them). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.running.values()]);
  }

  private launch(id: string): void {
    if (this.running.has(id) || this.stopping) return;
    const run = this.run(id)
      .catch((err) => this.deps.logger.error({ err, operation: id }, 'operation failed'))
      .finally(() => this.running.delete(id));
    this.running.set(id, run);
  }

  private async run(id: string): Promise<void> {
    const { deps } = this;
    // The operation's lock lives as long as this session: a server that dies lets go of it.
    const lock = new pg.Client({ connectionString: this.controlUrl, application_name: 'tenantry-operation' });
    lock.on('error', () => undefined);
    await lock.connect();
    try {
      const { rows } = await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [`tenantry:operation:${id}`]);
      if (!rows[0]?.ok) return; // another server runs it
      let operation = await deps.db.operation.findUniqueOrThrow({ where: { id } });
      if (operation.status !== 'PENDING' && operation.status !== 'RUNNING') return;
      // Items that were in flight when a server stopped are run again: every step is idempotent.
      await deps.db.operationItem.updateMany({ where: { operationId: id, status: 'RUNNING' }, data: { status: 'PENDING', startedAt: null } });
      operation = await deps.db.operation.update({ where: { id }, data: { status: 'RUNNING', startedAt: operation.startedAt ?? new Date() } });
      deps.logger.info({ operation: id, kind: operation.kind }, 'running operation');
      this.deps.events.publishOperation(id);

      const pending = () => deps.db.operationItem.findMany({ where: { operationId: id, status: 'PENDING' }, orderBy: { position: 'asc' } });
      const canary = (await pending()).filter((i) => i.position < operation.canarySize);
      await this.runItems(operation, canary);
      if (this.stopping) return;
      const canaryFailures = await deps.db.operationItem.findMany({ where: { operationId: id, position: { lt: operation.canarySize }, status: 'FAILED' } });
      if (canaryFailures.length > 0) {
        await deps.db.operationItem.updateMany({ where: { operationId: id, status: 'PENDING' }, data: { status: 'SKIPPED', message: 'not run: the canary failed' } });
        await this.finish(id, 'FAILED', `the canary failed on ${canaryFailures.map((f) => f.tenantSlug).join(', ')}; the rest was not run`);
        return;
      }
      await this.runItems(operation, await pending());
      if (this.stopping) return;
      const failed = await deps.db.operationItem.count({ where: { operationId: id, status: 'FAILED' } });
      await this.finish(id, failed > 0 ? 'COMPLETED_WITH_ERRORS' : 'SUCCEEDED', null);
    } finally {
      await lock.end().catch(() => undefined);
    }
  }

  /** Runs items with the operation's concurrency; a failure is that tenant's alone. */
  private async runItems(operation: Operation, items: OperationItem[]): Promise<void> {
    const queue = [...items];
    const worker = async () => {
      for (let item = queue.shift(); item && !this.stopping; item = queue.shift()) await this.runItem(operation, item);
    };
    await Promise.all(Array.from({ length: Math.min(operation.concurrency, queue.length) }, worker));
  }

  private async runItem(operation: Operation, item: OperationItem): Promise<void> {
    const { deps } = this;
    await deps.db.operationItem.update({ where: { operationId_tenantId: { operationId: operation.id, tenantId: item.tenantId } }, data: { status: 'RUNNING', startedAt: new Date() } });
    const op: OperationContext = { actor: `operation ${operation.id}`, correlationId: operation.id };
    const params = operation.params as { targetVersion: string | null };
    let outcome: { status: 'SUCCEEDED' | 'FAILED'; message: string | null; fromVersion?: string; toVersion?: string };
    try {
      await deps.hooks.beforeOperationItem?.(operation.kind, item.tenantSlug);
      if (operation.kind === 'UPGRADE_SCHEMAS') {
        const r = await upgradeTenantSchema(deps, op, { slug: item.tenantSlug, targetVersion: params.targetVersion });
        outcome = r.failed
          ? { status: 'FAILED', message: `step ${r.failed.version} failed: ${r.failed.message}`, fromVersion: r.fromVersion, toVersion: r.toVersion }
          : { status: 'SUCCEEDED', message: r.applied.length ? `applied ${r.applied.join(', ')}` : 'already at the target', fromVersion: r.fromVersion, toVersion: r.toVersion };
      } else {
        const r = await updateTenantExtensions(deps, op, { slug: item.tenantSlug });
        const unavailable = r.after.filter((e) => e.status === 'UNAVAILABLE').map((e) => e.name);
        outcome = unavailable.length
          ? { status: 'FAILED', message: `unavailable on the server: ${unavailable.join(', ')}` }
          : { status: 'SUCCEEDED', message: r.changes.length ? r.changes.join('; ') : 'nothing to do' };
      }
    } catch (err) {
      if (!(err instanceof UserError)) deps.logger.error({ err, operation: operation.id, tenant: item.tenantSlug }, 'operation item failed');
      outcome = { status: 'FAILED', message: (err as Error).message.slice(0, 500) };
    }
    await deps.db.$transaction([
      deps.db.operationItem.update({
        where: { operationId_tenantId: { operationId: operation.id, tenantId: item.tenantId } },
        data: { ...outcome, finishedAt: new Date() },
      }),
      deps.db.operation.update({ where: { id: operation.id }, data: { done: { increment: 1 }, ...(outcome.status === 'FAILED' ? { failed: { increment: 1 } } : {}) } }),
    ]);
    deps.events.publishOperation(operation.id);
  }

  private async finish(id: string, status: 'SUCCEEDED' | 'COMPLETED_WITH_ERRORS' | 'FAILED', error: string | null): Promise<void> {
    const operation = await this.deps.db.operation.update({ where: { id }, data: { status, error, finishedAt: new Date() } });
    await recordAuditEvent(this.deps.db, { actor: `operation ${id}`, correlationId: id }, {
      category: 'operation',
      action: 'operation.finished',
      subject: id,
      metadata: { kind: operation.kind, status, total: operation.total, done: operation.done, failed: operation.failed, error },
    });
    this.deps.events.publishOperation(id);
  }
}
