import { ClusterRegistry } from '../../clusters/index.js';
import { ConnectionStrings, type Endpoint } from '../connection-strings.js';
import type { Tenant } from '../tenant-store.js';
import { builder } from '../../../graphql/builder.js';
import { TenantRef } from './Tenant.js';

const EndpointRef = builder.objectRef<Endpoint>('Endpoint').implement({
  description: 'Where a client connects, and as whom: the parts of a connection string but the password.',
  fields: (t) => ({
    host: t.exposeString('host', { description: 'Host name or address (TENANT_HOST when set).' }),
    port: t.exposeInt('port', { description: 'TCP port.' }),
    database: t.exposeString('database', { description: 'The database to connect to.' }),
    user: t.exposeString('user', { description: 'The login role.' }),
  }),
});

const TenantEndpointsRef = builder.objectRef<{ direct: Endpoint; pooled: Endpoint | null }>('TenantEndpoints').implement({
  description: 'Where the tenant\'s role connects: the same addresses as the connection strings provisionTenant and rotateTenantCredentials hand out.',
  fields: (t) => ({
    direct: t.field({ type: EndpointRef, description: 'Straight to the PostgreSQL cluster that holds its database.', resolve: (e) => e.direct }),
    pooled: t.field({ type: EndpointRef, nullable: true, description: 'Through the connection pooler: the port of the PgBouncer that has the tenant\'s pool (one of POOLER_SHARDS), the same after a move. Null when there is none (POOLER=none).', resolve: (e) => e.pooled }),
  }),
});

/** States in which the tenant has a database and a role to connect to (or will have, while provisioning). */
const CONNECTABLE: ReadonlySet<Tenant['status']> = new Set(['PROVISIONING', 'ACTIVE', 'SUSPENDED']);

builder.objectField(TenantRef, 'endpoints', (t) =>
  t.field({
    type: TenantEndpointsRef,
    nullable: true,
    description:
      'Where its role connects, without the password; null once it has no database (FAILED, DEPROVISIONING, DEPROVISIONED). Seen by admins and the tenant\'s own keys, like the tenant.',
    resolve: async (tenant, _args, ctx) => {
      if (!CONNECTABLE.has(tenant.status)) return null;
      const cluster = await ctx.services.get(ClusterRegistry).get(tenant.clusterId);
      return ctx.services.get(ConnectionStrings).tenantEndpoints(cluster, tenant);
    },
  }),
);
