// Registering, changing, cordoning and removing managed clusters (issue 17, "Registry"). A server
// is checked before anything is stored: reachable, PostgreSQL 15 to 18, not a standby, the
// control plane's privileges there; then the preparers (the pooler's lookup function and auth
// user, template databases) run on it. Only then is its row written, with its audit event, and
// `cluster.changed` published so per-cluster duties start for it.
import { randomUUID } from 'node:crypto';
import { Prisma, type Cluster } from '../../generated/prisma/client.js';
import { ClusterAdmin, type ServerFacts, type SessionLimits } from '../../platform/db/cluster-admin.js';
import { describeServer } from '../../platform/db/connection-url.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import { readControlPlanePrivileges } from '../../platform/db/control-plane-privileges.js';
import { withCatalogSession } from '../../platform/db/session-settings.js';
import type { DomainEvents } from '../../platform/domain-events.js';
import { UserError } from '../../platform/errors.js';
import type { TenantLocks } from '../../platform/locks/locking.js';
import type { Logger } from '../../platform/logger.js';
import { recordAuditEvent, type OperationContext } from '../audit/index.js';
import { existingDatabases, probeServer, systemIdentifier } from './cluster-checks.sql.js';
import { holdsControlDatabase, type ClusterRegistry } from './cluster-registry.js';
import type { ClusterSecrets } from './cluster-secrets.js';

/** PostgreSQL 15.0 to 18.x: the servers Tenantry manages. */
export const SUPPORTED_VERSIONS = { min: 150000, max: 189999 } as const;

/**
 * Set-up a cluster needs before it takes tenants, run at registration (and again when its URL
 * changes). Must be idempotent: it may run again on a server it already prepared, and what it
 * made stays when a later check refuses the cluster (see docs/clusters.md).
 */
export interface ClusterPreparer {
  name: string;
  prepare(cluster: ClusterAdmin): Promise<void>;
}

/** Where a cluster's admin URL comes from. */
export type ConnectionUrlSource = 'ENV' | 'SEALED' | 'CONTROL_SERVER';

export function connectionUrlSource(row: Pick<Cluster, 'connectionUrl' | 'connectionUrlEnv' | 'connectionUrlSealed'>): ConnectionUrlSource {
  if (row.connectionUrlEnv) return 'ENV';
  if (row.connectionUrlSealed) return 'SEALED';
  // A plain connection_url (before issue 17, none written now) is reported as the control server's kind: stored, not sealed.
  return row.connectionUrl ? 'SEALED' : 'CONTROL_SERVER';
}

/** Whether a server can be the source or target of an ONLINE move (logical replication). */
export interface MoveReadiness {
  walLevel: string;
  replicationSlotsFree: number;
  maxWalSenders: number;
  canTakeMoves: boolean;
  /** What stops it, in words; empty when it can. */
  reasons: string[];
}

export function moveReadiness(facts: Pick<ServerFacts, 'walLevel' | 'maxReplicationSlots' | 'replicationSlotsUsed' | 'maxWalSenders'>): MoveReadiness {
  const replicationSlotsFree = Math.max(0, facts.maxReplicationSlots - facts.replicationSlotsUsed);
  const reasons: string[] = [];
  if (facts.walLevel !== 'logical') reasons.push(`wal_level is ${facts.walLevel}, not logical (a server restart is needed to change it)`);
  if (replicationSlotsFree < 1) reasons.push(`no free replication slot (max_replication_slots ${facts.maxReplicationSlots}, ${facts.replicationSlotsUsed} in use)`);
  if (facts.maxWalSenders < 1) reasons.push('max_wal_senders is 0');
  return { walLevel: facts.walLevel, replicationSlotsFree, maxWalSenders: facts.maxWalSenders, canTakeMoves: reasons.length === 0, reasons };
}

interface ServerProbe extends ServerFacts {
  systemIdentifier: string;
  inRecovery: boolean;
}

export interface RegisterClusterInput {
  name: string;
  connectionUrlEnv?: string | null;
  connectionUrl?: string | null;
  region?: string | null;
  labels?: readonly string[] | null;
  maxTenants?: number | null;
}

export interface UpdateClusterInput {
  id: string;
  connectionUrlEnv?: string | null;
  connectionUrl?: string | null;
  /** undefined: unchanged; null: cleared. */
  region?: string | null;
  /** undefined or null: unchanged; a list replaces the labels. */
  labels?: readonly string[] | null;
  /** undefined: unchanged; null: no cap. */
  maxTenants?: number | null;
}

export interface ClusterChangeResult {
  cluster: Cluster;
  /** Read at the check (registration, a new URL); null when the URL did not change. */
  moves: MoveReadiness | null;
  /** What is stored but worth knowing: e.g. it cannot take ONLINE moves. */
  warnings: string[];
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const LABEL = /^[a-z0-9][a-z0-9._:=/-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const MAX_LABELS = 32;

export interface ClusterAdministrationOptions {
  db: ControlClient;
  clusters: ClusterRegistry;
  secrets: ClusterSecrets;
  locks: TenantLocks;
  events: DomainEvents;
  logger: Logger;
  limits: SessionLimits;
  /** Run on every server registered (and on a new URL): the pooler's and the templates' set-up. */
  preparers: readonly ClusterPreparer[];
  /** How long a mutation waits for the listeners of `cluster.changed` (POOL_APPLY_WAIT_MS). */
  changeWaitMs: number;
  /** The environment `connectionUrlEnv` names are read from (process.env). */
  env?: NodeJS.ProcessEnv;
}

/** registerCluster, updateCluster, cordonCluster, removeCluster. */
export class ClusterAdministration {
  constructor(private readonly p: ClusterAdministrationOptions) {}

  private get env(): NodeJS.ProcessEnv {
    return this.p.env ?? process.env;
  }

  async registerCluster(op: OperationContext, input: RegisterClusterInput): Promise<ClusterChangeResult> {
    const { db } = this.p;
    const name = input.name.trim();
    if (!NAME.test(name)) throw new UserError('INVALID_INPUT', 'name must be 1 to 63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit', 'name');
    const region = validateRegion(input.region);
    const labels = validateLabels(input.labels) ?? [];
    const maxTenants = validateMaxTenants(input.maxTenants);
    const url = this.urlFrom(input, true)!;
    if (await db.cluster.findUnique({ where: { name } })) throw new UserError('INVALID_INPUT', `a cluster named ${name} is already registered`, 'name');

    const probe = await this.check(name, url.url, url.source === 'ENV' ? 'connectionUrlEnv' : 'connectionUrl');
    await this.assertNotRegisteredElsewhere(name, probe.systemIdentifier, null);
    const id = randomUUID();
    await this.prepare(id, name, url.url);
    const sealed = url.source === 'SEALED' ? await this.seal(url.url) : null;
    const { host, port } = describeServer(url.url);
    const moves = moveReadiness(probe);
    let cluster: Cluster;
    try {
      cluster = await db.$transaction(async (tx) => {
        const row = await tx.cluster.create({
          data: { id, name, connectionUrlEnv: url.source === 'ENV' ? url.env : null, connectionUrlSealed: sealed, region, labels, maxTenants },
        });
        await recordAuditEvent(tx, op, {
          category: 'cluster',
          action: 'cluster.registered',
          subject: name,
          metadata: {
            clusterId: id,
            host,
            port,
            serverVersion: probe.serverVersion,
            connectionUrlSource: url.source,
            connectionUrlEnv: url.source === 'ENV' ? url.env : null,
            region,
            labels,
            maxTenants,
            canTakeMoves: moves.canTakeMoves,
          },
        });
        return row;
      });
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
        throw new UserError('INVALID_INPUT', `a cluster named ${name} is already registered`, 'name');
      }
      throw err;
    }
    this.p.logger.info({ cluster: name, host, port, serverVersion: probe.serverVersion }, 'cluster registered');
    await this.changed(id, false);
    return { cluster, moves, warnings: moveWarnings(name, moves) };
  }

  async updateCluster(op: OperationContext, input: UpdateClusterInput): Promise<ClusterChangeResult> {
    const { db } = this.p;
    const row = await this.byId(input.id);
    const region = input.region === undefined ? undefined : validateRegion(input.region);
    const labels = validateLabels(input.labels);
    const maxTenants = input.maxTenants === undefined ? undefined : validateMaxTenants(input.maxTenants);
    const url = this.urlFrom(input, false);
    if (url && holdsControlDatabase(row)) {
      throw new UserError('INVALID_INPUT', `cluster ${row.name} holds the control database: it is reached through DATABASE_URL, not a URL of its own`, input.connectionUrl != null ? 'connectionUrl' : 'connectionUrlEnv');
    }
    let moves: MoveReadiness | null = null;
    let sealed: string | null = null;
    if (url) {
      const probe = await this.check(row.name, url.url, url.source === 'ENV' ? 'connectionUrlEnv' : 'connectionUrl');
      await this.assertSameServer(row, url.url, probe.systemIdentifier);
      await this.prepare(row.id, row.name, url.url);
      if (url.source === 'SEALED') sealed = await this.seal(url.url);
      moves = moveReadiness(probe);
    }
    const data: Prisma.ClusterUpdateInput = {};
    const changed: Record<string, unknown> = {};
    if (region !== undefined && region !== row.region) data.region = changed.region = region;
    if (labels !== undefined && labels.join('\n') !== row.labels.join('\n')) data.labels = changed.labels = labels;
    if (maxTenants !== undefined && maxTenants !== row.maxTenants) data.maxTenants = changed.maxTenants = maxTenants;
    if (url) {
      data.connectionUrlEnv = url.source === 'ENV' ? url.env : null;
      data.connectionUrlSealed = sealed;
      data.connectionUrl = null;
      changed.connectionUrlSource = url.source;
      if (url.source === 'ENV') changed.connectionUrlEnv = url.env;
      const { host, port } = describeServer(url.url);
      changed.server = `${host}:${port}`;
    }
    if (Object.keys(changed).length === 0) return { cluster: row, moves, warnings: [] };
    const cluster = await db.$transaction(async (tx) => {
      const updated = await tx.cluster.update({ where: { id: row.id }, data });
      await recordAuditEvent(tx, op, { category: 'cluster', action: 'cluster.updated', subject: row.name, metadata: { clusterId: row.id, ...changed } as Prisma.InputJsonObject });
      return updated;
    });
    // The next use connects with the new URL.
    if (url) await this.p.clusters.forget(row.id);
    await this.changed(row.id, false);
    return { cluster, moves, warnings: moves ? moveWarnings(row.name, moves) : [] };
  }

  /** ACTIVE → CORDONED (no new tenants are placed on it) or back; a DRAINING cluster stays as it is. */
  async cordonCluster(op: OperationContext, input: { id: string; cordoned?: boolean | null }): Promise<Cluster> {
    const cordoned = input.cordoned ?? true;
    const row = await this.byId(input.id);
    const [from, to] = cordoned ? (['ACTIVE', 'CORDONED'] as const) : (['CORDONED', 'ACTIVE'] as const);
    if (row.status === to) return row;
    if (row.status === 'DRAINING') throw new UserError('INVALID_INPUT', `cluster ${row.name} is DRAINING: its drain operation decides its status`, 'id');
    const cluster = await this.p.db.$transaction(async (tx) => {
      // Conditional: a drain that started in between wins.
      const { count } = await tx.cluster.updateMany({ where: { id: row.id, status: from }, data: { status: to } });
      if (count === 0) throw new UserError('INVALID_INPUT', `cluster ${row.name} changed status meanwhile; look again`, 'id');
      await recordAuditEvent(tx, op, { category: 'cluster', action: cordoned ? 'cluster.cordoned' : 'cluster.uncordoned', subject: row.name, metadata: { clusterId: row.id, from, to } });
      return tx.cluster.findUniqueOrThrow({ where: { id: row.id } });
    });
    await this.changed(row.id, false);
    return cluster;
  }

  /**
   * Forgets a cluster that holds no tenant (DEPROVISIONED ones excepted: their records go with
   * it, as do the records of finished moves to or from it; the audit trail keeps their history),
   * is the end of no move under way, and is not the control database's server. A source database
   * a move kept there (retainSourceHours) stays on the server, which is being retired.
   */
  async removeCluster(op: OperationContext, input: { id: string }): Promise<Cluster> {
    const { db } = this.p;
    const row = await this.byId(input.id);
    if (holdsControlDatabase(row)) throw new UserError('CLUSTER_NOT_EMPTY', `cluster ${row.name} holds the control database: it cannot be removed`, 'id');
    const admin = await this.p.clusters.adminFor(row).catch(() => null);
    const removed = async (): Promise<Cluster> => {
      const remaining = await db.tenant.findMany({
        where: { clusterId: row.id, status: { not: 'DEPROVISIONED' } },
        select: { slug: true, status: true },
        orderBy: { slug: 'asc' },
        take: 6,
      });
      if (remaining.length) {
        const total = await db.tenant.count({ where: { clusterId: row.id, status: { not: 'DEPROVISIONED' } } });
        const some = remaining.slice(0, 5).map((t) => `${t.slug} (${t.status})`).join(', ');
        throw new UserError('CLUSTER_NOT_EMPTY', `cluster ${row.name} still holds ${total} tenant${total === 1 ? '' : 's'}: ${some}${total > 5 ? ', …' : ''}; deprovision them or move them away (drainCluster) first`, 'id');
      }
      const namedBy = { OR: [{ sourceClusterId: row.id }, { targetClusterId: row.id }] };
      const running = await db.tenantMove.count({ where: { ...namedBy, status: 'RUNNING' } });
      if (running) {
        throw new UserError('CLUSTER_NOT_EMPTY', `${running} tenant move${running === 1 ? ' is' : 's are'} under way to or from cluster ${row.name}; remove it once they have finished`, 'id');
      }
      return db.$transaction(async (tx) => {
        // Finished moves that went through it go with it (every phase of them stays in the audit trail).
        const moves = await tx.tenantMove.deleteMany({ where: { ...namedBy, status: { not: 'RUNNING' } } });
        const gone = await tx.tenant.deleteMany({ where: { clusterId: row.id, status: 'DEPROVISIONED' } });
        await tx.usageLease.deleteMany({ where: { clusterId: row.id } });
        const deleted = await tx.cluster.delete({ where: { id: row.id } });
        const { host, port } = admin ?? { host: null, port: null };
        await recordAuditEvent(tx, op, {
          category: 'cluster',
          action: 'cluster.removed',
          subject: row.name,
          metadata: { clusterId: row.id, host, port, connectionUrlSource: connectionUrlSource(row), deprovisionedTenantRecords: gone.count, finishedMoveRecords: moves.count },
        });
        return deleted;
      });
    };
    // Under its capacity lock: a provisioning that chose this cluster checks it again under the same lock.
    const cluster = admin ? await this.p.locks.underCapacityLock(admin, removed) : await removed();
    await this.p.clusters.forget(row.id);
    this.p.logger.info({ cluster: row.name }, 'cluster removed');
    await this.changed(row.id, true);
    return cluster;
  }

  private async byId(id: string): Promise<Cluster> {
    const row = /^[0-9a-f-]{36}$/i.test(id) ? await this.p.db.cluster.findUnique({ where: { id } }) : null;
    if (!row) throw new UserError('NOT_FOUND', `no cluster with id ${id}`, 'id');
    return row;
  }

  /** Exactly one of connectionUrlEnv and connectionUrl (at registration), or at most one (update). */
  private urlFrom(input: { connectionUrlEnv?: string | null; connectionUrl?: string | null }, required: boolean): { source: 'ENV' | 'SEALED'; url: string; env?: string } | null {
    const env = input.connectionUrlEnv ?? null;
    const given = input.connectionUrl ?? null;
    if (env !== null && given !== null) throw new UserError('INVALID_INPUT', 'give connectionUrlEnv or connectionUrl, not both', 'connectionUrl');
    if (env === null && given === null) {
      if (required) throw new UserError('INVALID_INPUT', 'give connectionUrlEnv (the name of an environment variable holding the admin URL) or connectionUrl', 'connectionUrlEnv');
      return null;
    }
    if (env !== null) {
      if (!ENV_NAME.test(env)) throw new UserError('INVALID_INPUT', 'connectionUrlEnv must be the name of an environment variable (letters, digits and "_")', 'connectionUrlEnv');
      const url = this.env[env];
      if (!url) throw new UserError('INVALID_INPUT', `the environment variable ${env} is not set in Tenantry's environment`, 'connectionUrlEnv');
      assertPostgresUrl(url, 'connectionUrlEnv', `the value of ${env}`);
      return { source: 'ENV', url, env };
    }
    assertPostgresUrl(given!, 'connectionUrl', 'connectionUrl');
    return { source: 'SEALED', url: given! };
  }

  /**
   * Reachable, 15 to 18, a primary, and the control plane has what it needs there (the same
   * check as for DATABASE_URL at start, src/platform/db/control-plane-privileges.ts).
   */
  private async check(name: string, url: string, field: string): Promise<ServerProbe> {
    const { host, port } = describeServer(url);
    const connectTimeoutMs = Math.min(this.p.limits.connectTimeoutMs, 5_000);
    let probe: ServerProbe;
    try {
      probe = await withCatalogSession(url, { connectTimeoutMs }, async (client) => (await client.query<ServerProbe>(probeServer)).rows[0]!);
    } catch (err) {
      throw new UserError('CLUSTER_UNREACHABLE', `cluster ${name}: cannot reach ${host}:${port}: ${describeError(err)}; nothing was stored`, field);
    }
    if (probe.serverVersionNum < SUPPORTED_VERSIONS.min || probe.serverVersionNum > SUPPORTED_VERSIONS.max) {
      throw new UserError('CLUSTER_UNSUITABLE', `cluster ${name} (${host}:${port}) runs PostgreSQL ${probe.serverVersion}; Tenantry manages 15 to 18; nothing was stored`, field);
    }
    if (probe.inRecovery) throw new UserError('CLUSTER_UNSUITABLE', `cluster ${name} (${host}:${port}) is a standby (in recovery): register its primary; nothing was stored`, field);
    let privileges;
    try {
      privileges = await readControlPlanePrivileges(url, connectTimeoutMs);
    } catch (err) {
      throw new UserError('CLUSTER_UNREACHABLE', `cluster ${name}: cannot reach ${host}:${port}: ${describeError(err)}; nothing was stored`, field);
    }
    if (privileges.missing.length) {
      throw new UserError(
        'CLUSTER_UNSUITABLE',
        `cluster ${name} (${host}:${port}): the role "${privileges.role}" is not a superuser and lacks ` +
          privileges.missing.map((m) => `${m.what} (${m.fix})`).join('; ') +
          '; nothing was stored',
        field,
      );
    }
    return probe;
  }

  /** The same server must not be registered twice (its capacity would be counted twice). */
  private async assertNotRegisteredElsewhere(name: string, identifier: string, except: string | null): Promise<void> {
    for (const row of await this.p.clusters.rows()) {
      if (row.id === except) continue;
      const other = await this.identifierOf(row).catch(() => null);
      if (other === identifier) {
        throw new UserError('INVALID_INPUT', `cluster ${name} is the same server as the registered cluster ${row.name} (system identifier ${identifier}); nothing was stored`, 'connectionUrl');
      }
    }
  }

  /**
   * A new URL must lead to the server the cluster is: the same system identifier. When the
   * old URL no longer reaches it, every tenant database of the cluster must be on the new one.
   */
  private async assertSameServer(row: Cluster, url: string, identifier: string): Promise<void> {
    const current = await this.identifierOf(row).catch(() => null);
    if (current !== null) {
      if (current !== identifier) {
        const { host, port } = describeServer(url);
        throw new UserError('INVALID_INPUT', `${host}:${port} is another server (system identifier ${identifier}) than cluster ${row.name} (${current}): a cluster's URL may change, its server may not (move its tenants instead)`, 'connectionUrl');
      }
      return;
    }
    const tenants = await this.p.db.tenant.findMany({ where: { clusterId: row.id, status: { not: 'DEPROVISIONED' } }, select: { databaseName: true } });
    if (tenants.length === 0) {
      await this.assertNotRegisteredElsewhere(row.name, identifier, row.id);
      return;
    }
    const names = tenants.map((t) => t.databaseName);
    const found = await withCatalogSession(url, { connectTimeoutMs: this.p.limits.connectTimeoutMs }, (client) => client.query<{ datname: string }>(existingDatabases, [names]));
    const missing = names.filter((n) => !found.rows.some((r) => r.datname === n));
    if (missing.length) {
      throw new UserError(
        'INVALID_INPUT',
        `cluster ${row.name} cannot be reached at its current URL to compare, and the new server lacks ${missing.length} of its ${names.length} tenant databases (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}): it is not the same server`,
        'connectionUrl',
      );
    }
  }

  private async identifierOf(row: Cluster): Promise<string> {
    const admin = await this.p.clusters.adminFor(row);
    return (await admin.query<{ systemIdentifier: string }>(systemIdentifier)).rows[0]!.systemIdentifier;
  }

  /** Runs every preparer on a connection of its own to the new server; a failure refuses the cluster. */
  private async prepare(id: string, name: string, url: string): Promise<void> {
    if (this.p.preparers.length === 0) return;
    const admin = new ClusterAdmin(id, name, url, false, this.p.limits);
    try {
      for (const preparer of this.p.preparers) {
        try {
          await preparer.prepare(admin);
        } catch (err) {
          throw new UserError('CLUSTER_UNSUITABLE', `cluster ${name} (${admin.host}:${admin.port}): preparing ${preparer.name} failed: ${describeError(err)}; nothing was stored`, 'connectionUrl');
        }
      }
    } finally {
      await admin.close().catch(() => undefined);
    }
  }

  private async seal(url: string): Promise<string> {
    try {
      return await this.p.secrets.seal(url);
    } catch (err) {
      throw new UserError('INVALID_INPUT', `connectionUrl cannot be stored sealed: ${describeError(err)} (or give connectionUrlEnv)`, 'connectionUrl');
    }
  }

  private changed(clusterId: string, removed: boolean): Promise<void> {
    return this.p.events.publishAndWait('cluster.changed', { clusterId, removed }, this.p.changeWaitMs);
  }
}

function validateRegion(region: string | null | undefined): string | null {
  if (region == null) return null;
  const r = region.trim();
  if (r === '') return null;
  if (!NAME.test(r)) throw new UserError('INVALID_INPUT', 'region must be 1 to 63 lowercase letters, digits, ".", "_" or "-"', 'region');
  return r;
}

function validateLabels(labels: readonly string[] | null | undefined): string[] | undefined {
  if (labels == null) return undefined;
  if (labels.length > MAX_LABELS) throw new UserError('INVALID_INPUT', `at most ${MAX_LABELS} labels`, 'labels');
  const out = [...new Set(labels.map((l) => l.trim()))].sort();
  const bad = out.find((l) => !LABEL.test(l));
  if (bad !== undefined) throw new UserError('INVALID_INPUT', `label "${bad.slice(0, 70)}" must be 1 to 63 lowercase letters, digits, ".", "_", ":", "=", "/" or "-"`, 'labels');
  return out;
}

function validateMaxTenants(maxTenants: number | null | undefined): number | null {
  if (maxTenants == null) return null;
  if (!Number.isInteger(maxTenants) || maxTenants < 0 || maxTenants > 1_000_000) throw new UserError('INVALID_INPUT', 'maxTenants must be 0 to 1,000,000 (or null for no cap)', 'maxTenants');
  return maxTenants;
}

function assertPostgresUrl(url: string, field: string, what: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError('INVALID_INPUT', `${what} is not a URL (postgresql://user:password@host:port/database)`, field);
  }
  if (parsed.protocol !== 'postgresql:' && parsed.protocol !== 'postgres:') throw new UserError('INVALID_INPUT', `${what} must be a postgresql:// URL`, field);
  if (!parsed.hostname) throw new UserError('INVALID_INPUT', `${what} names no host`, field);
}

function moveWarnings(name: string, moves: MoveReadiness): string[] {
  return moves.canTakeMoves ? [] : [`cluster ${name} cannot take part in ONLINE moves: ${moves.reasons.join('; ')} (OFFLINE moves still work)`];
}

/** An error's message, with any URL's password hidden (pg puts none there; belt and braces). */
function describeError(err: unknown): string {
  // Node reports "localhost" tried on IPv4 and IPv6 as an AggregateError with an empty message.
  const inner = err instanceof AggregateError && !err.message ? err.errors : [err];
  const message = inner.map((e) => (e instanceof Error ? e.message || e.name : String(e))).join('; ');
  return message.replace(/(postgres(?:ql)?:\/\/[^:@/\s]*:)[^@\s]*@/g, '$1***@').slice(0, 300);
}
