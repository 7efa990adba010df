import type { ClusterAdmin } from '../../db/cluster-admin.js';
import {
  createDatabaseFromTemplate,
  databaseExists,
  grantConnect,
  grantSchemaVersionRead,
  handTablesToTenant,
  revokeConnectFromPublic,
  setDatabaseConnectionLimit,
  setDatabaseOwner,
} from '../../sql/databases.sql.js';
import { createTenantRole, roleExists, setRoleConnectionLimit, setRolePassword } from '../../sql/roles.sql.js';
import type { Deps } from '../deps.js';
import type { TemplateVersion } from '../templates/template-catalog.js';
import { TENANT_COMPONENT } from '../templates/schema-version-ledger.js';
import { mirrorSchemaVersion, readSchemaVersion } from '../templates/schema-version-record.js';
import { readInstalledExtensions, recordExtensions } from '../extensions/tenant-extensions.js';
import { generatePassword, scramSha256Verifier } from './credentials.js';

/** The provisioning state machine, in order. A tenant row records the last step that completed. */
export const PROVISION_STEPS = ['ROLE', 'TEMPLATE', 'DATABASE', 'ACCESS', 'SCHEMA_VERSION', 'CREDENTIALS'] as const;
export type ProvisionStep = (typeof PROVISION_STEPS)[number];

export interface StepContext {
  deps: Deps;
  cluster: ClusterAdmin;
  tenant: { id: string; slug: string; databaseName: string; roleName: string };
  maxConnections: number;
  template: TemplateVersion;
  actor: string;
  /** Set by CREDENTIALS; returned to the caller once and never stored. */
  password?: string;
}

/** Each step looks at the catalog first, so running it again after a crash is safe. */
export const runStep: Record<ProvisionStep, (ctx: StepContext) => Promise<void>> = {
  async ROLE({ cluster, tenant, maxConnections }) {
    const { rows } = await cluster.query<{ rolsuper: boolean }>(roleExists, [tenant.roleName]);
    if (rows[0]?.rolsuper) throw new Error(`role ${tenant.roleName} is a superuser; refusing to use it for a tenant`);
    if (!rows[0]) await cluster.query(createTenantRole(tenant.roleName, maxConnections));
    else await cluster.query(setRoleConnectionLimit(tenant.roleName, maxConnections));
  },

  async TEMPLATE({ deps, cluster, template }) {
    await deps.templateDatabases.ensure(cluster, template);
  },

  async DATABASE({ deps, cluster, tenant, maxConnections, template }) {
    const limit = maxConnections + deps.config.CONNECTION_RESERVE;
    const { rows } = await cluster.query(databaseExists, [tenant.databaseName]);
    if (rows[0]) {
      await cluster.query(setDatabaseOwner(tenant.databaseName, tenant.roleName));
      await cluster.query(setDatabaseConnectionLimit(tenant.databaseName, limit));
      return;
    }
    const templateDatabase = await deps.templateDatabases.ensure(cluster, template);
    await cluster.query(createDatabaseFromTemplate(tenant.databaseName, tenant.roleName, templateDatabase, limit));
  },

  async ACCESS({ deps, cluster, tenant }) {
    await cluster.query(revokeConnectFromPublic(tenant.databaseName));
    await cluster.query(grantConnect(tenant.databaseName, tenant.roleName));
    await deps.pools.allowPoolerLogin(cluster, tenant.databaseName);
    await cluster.withDatabase(tenant.databaseName, async (client) => {
      await client.query(handTablesToTenant(tenant.roleName));
      await client.query(grantSchemaVersionRead(tenant.roleName));
    });
  },

  async SCHEMA_VERSION({ deps, cluster, tenant, template, actor }) {
    const row = await cluster.withDatabase(tenant.databaseName, async (client) => {
      await client.query(
        `UPDATE public."__SchemaVersion" SET "AppliedAt" = now(), "AppliedBy" = $2, "Description" = $3 WHERE "Component" = $1`,
        [TENANT_COMPONENT, actor, `provisioned from template ${template.template} ${template.version}`],
      );
      const stamped = await readSchemaVersion(client);
      if (!stamped) throw new Error(`${tenant.databaseName} has no ${TENANT_COMPONENT} row in __SchemaVersion`);
      return { stamped, extensions: await readInstalledExtensions(client) };
    });
    await mirrorSchemaVersion(deps.db, tenant.id, row.stamped);
    await recordExtensions(deps.db, tenant.id, row.extensions);
  },

  async CREDENTIALS(ctx) {
    const password = generatePassword();
    await ctx.cluster.query(setRolePassword(ctx.tenant.roleName, scramSha256Verifier(password)));
    ctx.password = password;
  },
};
