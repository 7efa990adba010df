import type { Config } from '../../platform/config.js';
import type { ClusterAdmin } from '../../platform/db/cluster-admin.js';
import type { ControlClient } from '../../platform/db/control-client.js';
import type pg from 'pg';
import type { Prisma } from '../../generated/prisma/client.js';
import {
  canSetRole,
  createDatabaseFromTemplate,
  createTenantRole,
  databaseExists,
  grantRoleToControlPlane,
  grantTenantDatabaseAccess,
  handTablesToTenant,
  lockSchemaVersionTable,
  normaliseTenantDatabase,
  revokeConnectFromPublic,
  roleExists,
  setDatabaseOwnerToUs,
  setRoleConnectionLimit,
  setRolePassword,
  setTenantSearchPath,
  type CredentialHandoffs,
  type SchemaVersionRow,
} from '../tenants/index.js';
import { readInstalledExtensions, recordExtensions } from '../extensions/index.js';
import { mirrorSchemaVersionIn, TENANT_COMPONENT, type TemplateDatabases, type TemplateVersion } from '../templates/index.js';
import type { PoolSync } from '../pools/index.js';
import { stampSchemaVersion } from './provisioning.sql.js';

/** The provisioning state machine, in order. A tenant row records the last step that completed. */
export const PROVISION_STEPS = ['ROLE', 'TEMPLATE', 'DATABASE', 'ACCESS', 'SCHEMA_VERSION', 'CREDENTIALS'] as const;
export type ProvisionStep = (typeof PROVISION_STEPS)[number];

/** What the steps use besides the cluster: TenantProvisioning's own collaborators. */
export interface StepServices {
  db: ControlClient;
  config: Pick<Config, 'CONNECTION_RESERVE' | 'DATABASE_COPY_STRATEGY'>;
  templateDatabases: TemplateDatabases;
  pools: PoolSync;
  handoffs: CredentialHandoffs;
}

export interface StepContext {
  services: StepServices;
  cluster: ClusterAdmin;
  tenant: { id: string; slug: string; databaseName: string; roleName: string };
  maxConnections: number;
  template: TemplateVersion;
  actor: string;
  /** The caller's idempotency key: with one, CREDENTIALS keeps the password for it (see credential-handoff.ts). */
  idempotencyKey: string | null;
  /** The session in the new database that ACCESS and SCHEMA_VERSION share. */
  inDatabase: TenantDatabaseSession;
  /** A new password and its verifier, derived while the earlier steps run (CREDENTIALS uses it unless a kept one applies). */
  freshCredentials: Promise<{ password: string; verifier: string }>;
  /** Set by CREDENTIALS; returned to the caller once. */
  password?: string;
  /** What the step wants recorded on the tenant row together with its completion. */
  record?: Prisma.TenantUpdateInput;
  /** Control-database writes that belong in the same transaction as the step's completion. */
  recordIn?: (tx: Prisma.TransactionClient) => Promise<void>;
}

/**
 * One session in a new tenant database, opened by the first step that needs it and shared by
 * the next: a fresh database's first connection is the dearest part of those steps.
 */
export class TenantDatabaseSession {
  private opened: Promise<pg.Client> | undefined;

  constructor(
    private readonly cluster: ClusterAdmin,
    private readonly database: string,
  ) {}

  client(): Promise<pg.Client> {
    return (this.opened ??= this.cluster.openDatabase(this.database));
  }

  /** Ends the session if one was opened; never throws. */
  async close(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    await opened?.then((c) => c.end()).catch(() => undefined);
  }
}

const UNDEFINED_DATABASE = '3D000';

/** Each step looks at the catalog first, so running it again after a crash is safe. */
export const runStep: Record<ProvisionStep, (ctx: StepContext) => Promise<void>> = {
  async ROLE({ cluster, tenant, maxConnections }) {
    const { rows } = await cluster.query<{ rolsuper: boolean }>(roleExists, [tenant.roleName]);
    if (rows[0]?.rolsuper) throw new Error(`role ${tenant.roleName} is a superuser; refusing to use it for a tenant`);
    if (!rows[0]) await cluster.query(createTenantRole(tenant.roleName, maxConnections));
    else await cluster.query(setRoleConnectionLimit(tenant.roleName, maxConnections));
    // A least-privilege control plane hands the tenant its tables and runs template steps as
    // it: that takes being able to SET ROLE to it.
    const me = await cluster.identity();
    if (!me.superuser) {
      const { rows: member } = await cluster.query<{ ok: boolean }>(canSetRole(me.serverVersionNum), [tenant.roleName]);
      if (!member[0]?.ok) await cluster.query(grantRoleToControlPlane(tenant.roleName, me.serverVersionNum));
    }
  },

  async TEMPLATE({ services, cluster, template }) {
    await services.templateDatabases.ensure(cluster, template);
  },

  async DATABASE({ services, cluster, tenant, maxConnections, template }) {
    const limit = maxConnections + services.config.CONNECTION_RESERVE;
    const { rows } = await cluster.query<{ owned_by_us: boolean }>(databaseExists, [tenant.databaseName]);
    if (rows[0]) {
      // Left by an attempt that stopped after creating it.
      if (!rows[0].owned_by_us) await cluster.query(setDatabaseOwnerToUs(tenant.databaseName));
      await cluster.query(normaliseTenantDatabase(tenant.databaseName, limit));
    } else {
      const create = async () =>
        cluster.query(createDatabaseFromTemplate(tenant.databaseName, await services.templateDatabases.ensure(cluster, template), limit, services.config.DATABASE_COPY_STRATEGY ?? null));
      await create().catch(async (err: { code?: string }) => {
        if (err.code !== UNDEFINED_DATABASE) throw err;
        // Someone dropped the template database since this process prepared it: prepare it again.
        services.templateDatabases.forget(cluster, template);
        await create();
      });
    }
    await cluster.query(setTenantSearchPath(tenant.databaseName));
  },

  async ACCESS(ctx) {
    const { services, cluster, tenant, inDatabase } = ctx;
    await cluster.query(`${revokeConnectFromPublic(tenant.databaseName)}; ${grantTenantDatabaseAccess(tenant.databaseName, tenant.roleName)}`);
    const client = await inDatabase.client();
    await services.pools.allowPoolerLogin(cluster, tenant.databaseName, client);
    await client.query(handTablesToTenant(tenant.roleName));
    ctx.record = { securedAt: new Date() };
  },

  async SCHEMA_VERSION(ctx) {
    const { tenant, template, actor } = ctx;
    const client = await ctx.inDatabase.client();
    await client.query('BEGIN');
    const row = await (async () => {
      await lockSchemaVersionTable(client);
      const { rows } = await client.query<SchemaVersionRow>(stampSchemaVersion, [TENANT_COMPONENT, actor, `provisioned from template ${template.template} ${template.version}`]);
      const stamped = rows[0];
      await client.query('COMMIT');
      if (!stamped) throw new Error(`${tenant.databaseName} has no ${TENANT_COMPONENT} row in __SchemaVersion`);
      return { stamped, extensions: await readInstalledExtensions(client) };
    })().catch(async (err: unknown) => {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    });
    ctx.recordIn = async (tx) => {
      await mirrorSchemaVersionIn(tx, tenant.id, row.stamped);
      await recordExtensions(tx, tenant.id, row.extensions);
    };
  },

  async CREDENTIALS(ctx) {
    const { services, cluster, tenant, idempotencyKey } = ctx;
    // Resuming with the caller's key: the password kept for it is the one to set.
    const kept = idempotencyKey ? await services.handoffs.findHandoff(tenant.id, idempotencyKey) : null;
    if (kept) {
      if (kept.verifier) await cluster.query(setRolePassword(tenant.roleName, kept.verifier));
      ctx.password = kept.password;
      return;
    }
    const { password, verifier } = await ctx.freshCredentials;
    // Kept before PostgreSQL gets it: a crash after this line leaves something to complete.
    if (idempotencyKey) {
      await services.db.$transaction((tx) => services.handoffs.storeHandoff(tx, { tenantId: tenant.id, purpose: 'PROVISION', key: idempotencyKey, password, verifier }));
    }
    await cluster.query(setRolePassword(tenant.roleName, verifier));
    ctx.password = password;
  },
};
