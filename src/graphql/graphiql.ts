import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * What the Headers tab holds until the user pastes a key. The server recognises it (and
 * anything shaped like it) and answers "put your API key in the Headers tab".
 */
export const GRAPHIQL_KEY_PLACEHOLDER = '<paste your admin key>';

/** The starter document: three named operations; the ▶ button offers them by name. */
export const GRAPHIQL_STARTER = `# Welcome to Tenantry.
# 1. Put your API key in the Headers tab below: the
#    admin key printed once at first start (lost it?
#    \`npm run admin-key\` mints a new one).
# 2. Press ▶ and pick an operation, or put the cursor
#    in one and press Ctrl-Enter.

# A tenant: its own database and login role, made from
# the default template, with a connection quota. The
# connection strings are shown once: keep them.
mutation ProvisionTenant {
  provisionTenant(input: {
    slug: "acme-dev"
    displayName: "Acme (dev)"
    maxConnections: 20
  }) {
    tenant {
      slug status databaseName roleName
      quota { maxConnections }
      schemaVersion { version compatibility }
    }
    connectionString
    pooledConnectionString
    userErrors { code field message }
  }
}

# The fleet (a tenant's key sees only its own tenant).
query Tenants {
  tenants(first: 20) {
    totalCount
    edges {
      node {
        slug status databaseName
        quota { maxConnections }
      }
    }
  }
}

# Live connection usage: the current value at once,
# then every change. Press ■ to stop.
subscription ConnectionUsage {
  connectionUsage(tenantSlug: "acme-dev") {
    current max usagePercent sampledAt
  }
}
`;

export const graphiqlOptions: GraphiQLOptions = {
  title: 'Tenantry',
  defaultQuery: GRAPHIQL_STARTER,
  headers: JSON.stringify({ Authorization: `Bearer ${GRAPHIQL_KEY_PLACEHOLDER}` }, null, 2),
  defaultEditorToolsVisibility: 'headers',
  // Subscriptions over SSE, on the same POST as everything else: the Authorization header goes with them.
  subscriptionsProtocol: 'SSE',
};

let page: Promise<string> | undefined;

/**
 * The GraphiQL page with every script, style and worker inlined from the installed
 * @graphql-yoga/render-graphiql package (graphql-yoga's own renderer loads them from a
 * CDN): it asks nothing of the network, so it works offline. About 9 MB, built once, on the
 * first request for it: the package is loaded only then (parsing 9 MB of JavaScript would
 * cost every start, and every process of a test run, a second of CPU).
 */
export function renderOfflineGraphiQL(): Promise<string> {
  page ??= import('@graphql-yoga/render-graphiql').then(({ renderGraphiQL }) => renderGraphiQL(graphiqlOptions));
  return page;
}
