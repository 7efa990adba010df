import { gql } from './graphql.ts';

export const VIEWER = gql`
  query Viewer { viewer { role keyName tenant { slug } } }
`;

export const FLEET_TENANTS = gql`
  query FleetTenants($first: Int!, $after: String, $filter: TenantFilter, $orderBy: TenantOrder!) {
    tenants(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id slug displayName status
          quota { maxConnections updatedAt updatedBy }
          usage { current max usagePercent pooled direct poolerIdle peak24h sampledAt tenantSlug }
        }
      }
    }
  }
`;

/** The page's last hour, fetched after the rows show: sparklines and trends. */
export const FLEET_SPARKLINES = gql`
  query FleetSparklines($first: Int!, $after: String, $filter: TenantFilter, $orderBy: TenantOrder!) {
    tenants(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
      edges { node { slug usageHistory(range: HOUR) { minuteStartAt peakConnections maxConnections } } }
    }
  }
`;

export const USAGE_BATCH = gql`
  subscription UsageBatch($slugs: [String!]) {
    connectionUsageBatch(tenantSlugs: $slugs) {
      snapshot removedTenantSlugs sampledAt
      usage { current max usagePercent pooled direct poolerIdle peak24h sampledAt tenantSlug }
    }
  }
`;

export const CLUSTERS = gql`
  query Clusters { clusters { id name capacity allocatedConnections tenantCount maxConnections serverVersion } }
`;

export const CLUSTER_USAGE = gql`
  subscription ClusterUsage($clusterId: ID!) {
    clusterUsage(clusterId: $clusterId) { current maxConnections tenantConnections allocatedConnections tenantCount tenantsAtLimit usagePercent sampledAt }
  }
`;

export const FLEET_HISTORY = gql`
  query FleetHistory { fleetUsageHistory(range: DAY) { minuteStartAt sessions tenantSessions allocatedConnections } }
`;

export const RUNNING_OPERATIONS = gql`
  query RunningOperations {
    operations(first: 20, filter: { status: [PENDING, RUNNING] }) {
      totalCount
      edges { node { id kind status template targetVersion total done succeeded failed createdAt createdBy } }
    }
  }
`;

export const OPERATION_PROGRESS = gql`
  subscription OperationProgress($id: ID!) {
    operation(id: $id) { id kind status template targetVersion total done succeeded failed createdAt createdBy }
  }
`;

export const QUOTA_DETAILS = gql`
  query QuotaDetails($slug: String!, $first: Int!) {
    tenant(slug: $slug) {
      slug
      cluster { capacity allocatedConnections }
      usage { current max usagePercent peak24h }
      quota { maxConnections updatedAt updatedBy history(first: $first) { changedAt actor oldMaxConnections newMaxConnections reason } }
    }
  }
`;

export const UPDATE_QUOTA = gql`
  mutation UpdateQuota($input: UpdateTenantQuotaInput!) {
    updateTenantQuota(input: $input) {
      userErrors { code field message }
      warnings
      quota { maxConnections updatedAt updatedBy }
      tenant { slug usage { current max usagePercent pooled direct poolerIdle peak24h sampledAt tenantSlug } }
    }
  }
`;

export const TENANT_PAGE = gql`
  query TenantPage($slug: String!) {
    tenant(slug: $slug) {
      slug displayName status databaseName roleName createdAt
      cluster { name }
      quota { maxConnections updatedAt updatedBy }
      usage { current max usagePercent pooled direct poolerIdle peak24h sampledAt tenantSlug }
      schemaVersion { version expectedVersion compatibility appliedAt }
      extensions { name installedVersion requiredVersion availableVersion status }
    }
  }
`;

export const TENANT_ENDPOINTS = gql`
  query TenantEndpoints($slug: String!) {
    tenant(slug: $slug) { slug endpoints { direct { host port database user } pooled { host port database user } } }
  }
`;

export const TENANT_SESSIONS = gql`
  query TenantSessions($slug: String!) {
    tenant(slug: $slug) { slug connections { pid state durationSeconds query applicationName backendStart } }
  }
`;

export const TENANT_USAGE_HISTORY = gql`
  query TenantUsageHistory($slug: String!, $range: UsageRange!) {
    tenant(slug: $slug) { slug usageHistory(range: $range) { minuteStartAt peakConnections maxConnections } }
  }
`;

export const TENANT_AUDIT = gql`
  query TenantAudit($slug: String!, $first: Int!) {
    tenant(slug: $slug) {
      slug
      auditEvents(first: $first) { totalCount edges { node { id occurredAt actor action category subject } } }
    }
  }
`;

export const TENANT_USAGE = gql`
  subscription TenantUsage($slug: String) {
    connectionUsage(tenantSlug: $slug) { current max usagePercent pooled direct poolerIdle peak24h sampledAt tenantSlug }
  }
`;

export const TERMINATE = gql`
  mutation Terminate($input: TerminateConnectionInput!) {
    terminateConnection(input: $input) { terminatedPid userErrors { code field message } }
  }
`;

export const ROTATE = gql`
  mutation Rotate($input: RotateTenantCredentialsInput!) {
    rotateTenantCredentials(input: $input) { connectionString pooledConnectionString userErrors { code field message } }
  }
`;

export const READ_ONLY_CREDENTIALS = gql`
  query ReadOnlyCredentials($slug: String!) {
    tenant(slug: $slug) { slug readOnlyCredentials { id name roleName maxConnections createdAt createdBy expiresAt revokedAt status } }
  }
`;

export const CREATE_READ_ONLY = gql`
  mutation CreateReadOnly($input: CreateReadOnlyCredentialsInput!) {
    createReadOnlyCredentials(input: $input) { connectionString credentials { id } userErrors { code field message } }
  }
`;

export const REVOKE_READ_ONLY = gql`
  mutation RevokeReadOnly($id: ID!) {
    revokeReadOnlyCredentials(input: { id: $id }) { credentials { id revokedAt } userErrors { code field message } }
  }
`;
