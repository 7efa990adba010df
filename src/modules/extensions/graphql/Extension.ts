import { extensionReport, type ExtensionReport } from '../extension-status.js';
import { TenantExtensions, type TenantExtension } from '../tenant-extensions.js';
import { builder } from '../../../graphql/builder.js';
import type { OfferedExtension } from '../offered-extensions.js';
import { liveFieldCost, liveRead } from '../../../graphql/live-read.js';
import { ADMIN_FIGURE, ClusterRef } from '../../clusters/graphql/index.js';
import { TenantRef } from '../../tenants/graphql/index.js';

const ExtensionStatusEnum = builder.enumType('ExtensionStatus', {
  description: 'How a tenant\'s extension stands against its template\'s policy and the server.',
  values: {
    OK: { description: 'Installed, meeting the policy.' },
    OUTDATED: { description: 'Below the minimum, or below the newest offered version when the policy tracks it; updateTenantExtensions fixes it.' },
    MISSING: { description: 'Required, offered by the server, not installed; updateTenantExtensions installs it.' },
    UNAVAILABLE: { description: 'Required, and the server does not offer it (at the minimum version).' },
  },
});

/** A report line with how old it is. */
export type ExtensionView = ExtensionReport & { recordedAt?: Date | null; checkedAt?: Date | null };

/** Lines read from the tenant database at `at` (live reads, the result of a change). */
export function readAt(report: ExtensionReport[], at: Date): ExtensionView[] {
  return report.map((e) => ({ ...e, checkedAt: at }));
}

export const InstalledExtensionRef = builder.objectRef<ExtensionView>('InstalledExtension').implement({
  description: 'One extension of a tenant\'s template policy, against the tenant database and the server.',
  fields: (t) => ({
    recordedAt: t.expose('recordedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When Tenantry recorded the installed version (null when not installed, or read live).',
    }),
    checkedAt: t.expose('checkedAt', {
      type: 'DateTime',
      nullable: true,
      description:
        'When the tenant database was last read for this: the last inventory (refreshTenant runs one now), or the moment of a live read. ' +
        'Null when no inventory has looked at it yet.',
    }),
    name: t.exposeString('name', { description: 'The extension\'s name.' }),
    required: t.exposeBoolean('required', { description: 'Whether the policy requires it (false: optional, installed when offered).' }),
    installedVersion: t.exposeString('installedVersion', { nullable: true, description: 'The version in the tenant database; null when not installed.' }),
    availableVersion: t.exposeString('availableVersion', { nullable: true, description: 'The newest version the server offers.' }),
    requiredVersion: t.exposeString('requiredVersion', { nullable: true, description: 'The policy\'s minimum.' }),
    status: t.field({ type: ExtensionStatusEnum, description: 'How it stands against the policy and the server.', resolve: (e) => e.status }),
  }),
});

const AvailableExtensionRef = builder.objectRef<OfferedExtension>('AvailableExtension').implement({
  description: 'An extension the server offers (a row of pg_available_extensions, with its versions).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The extension\'s name.' }),
    defaultVersion: t.exposeString('default_version', { nullable: true, description: 'The version CREATE EXTENSION installs when none is named; null when the server gives none.' }),
    versions: t.exposeStringList('versions', { description: 'Every version the server can install (pg_available_extension_versions).' }),
    comment: t.exposeString('comment', { nullable: true, description: 'The extension\'s own description; null when it has none.' }),
  }),
});

builder.objectField(ClusterRef, 'extensions', (t) =>
  t.field({
    ...ADMIN_FIGURE,
    type: [AvailableExtensionRef],
    nullable: true,
    description: 'What the server offers (pg_available_extensions, read at most once per CATALOG_CACHE_MS); null for tenant keys.',
    resolve: (c, _, ctx) => ctx.clusterExtensions.load(c.id),
  }),
);

builder.objectField(TenantRef, 'extensions', (t) =>
  t.field({
    type: [InstalledExtensionRef],
    description:
      'The template policy\'s extensions against this tenant. By default from what Tenantry last recorded (no connection to the tenant ' +
      'database, so lists stay cheap; checkedAt says how old it is, refreshTenant brings it up to date); live: true reads the tenant database now, within the shared live-read budget ' +
      '(LIVE_READ_CONCURRENCY per cluster, shared fairly between tenants and admin keys; SERVER_BUSY past the caller\'s LIVE_READ_QUEUE), and costs GRAPHQL_LIVE_FIELD_COST.',
    args: { live: t.arg.boolean({ defaultValue: false, description: 'Read the tenant database now instead of the last record (default false).' }) },
    complexity: (args, ctx) => ({ field: args.live ? liveFieldCost(ctx) : 1, multiplier: 10 }),
    resolve: async (tenant, { live }, ctx) => {
      if (tenant.status !== 'ACTIVE' && tenant.status !== 'SUSPENDED') return [];
      const extensions = ctx.services.get(TenantExtensions);
      if (live) return liveRead(ctx, tenant.clusterId, async () => readAt(await extensions.liveReport(tenant), new Date()));
      const [recorded, offered, checkedAt] = await Promise.all([
        ctx.loader<string, TenantExtension[]>('tenantExtensions', null, (ids) => extensions.recordedByTenantIds(ids)).load(tenant.id),
        ctx.clusterExtensions.load(tenant.clusterId),
        ctx.loader<string, Date | null>('tenantCheckedAt', null, (ids) => extensions.checkedAtByTenantIds(ids)).load(tenant.id),
      ]);
      const policy = extensions.policyOf(tenant);
      const report = extensionReport(policy, new Map(recorded.map((e) => [e.name, e.version])), new Map(offered.map((o) => [o.name, o.versions])));
      return report.map((e) => ({ ...e, recordedAt: recorded.find((r) => r.name === e.name)?.recordedAt ?? null, checkedAt }));
    },
  }),
);
