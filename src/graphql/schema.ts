// The schema index only imports: each module's graphql/index.ts adds its types, its root fields,
// and the fields it contributes to lower modules' types (docs/architecture.md).
import { builder } from './builder.js';
import { describeMutationErrors } from './mutation-errors.js';
import '../modules/audit/graphql/index.js';
import '../modules/clusters/graphql/index.js';
import '../modules/keys/graphql/index.js';
import '../modules/tenants/graphql/index.js';
import '../modules/extensions/graphql/index.js';
import '../modules/quotas/graphql/index.js';
import '../modules/templates/graphql/index.js';
import '../modules/provisioning/graphql/index.js';
import '../modules/pools/graphql/index.js';
import '../modules/usage/graphql/index.js';
import '../modules/credentials/graphql/index.js';
import '../modules/health/graphql/index.js';
import '../modules/operations/graphql/index.js';
import '../modules/moves/graphql/index.js';

// Every mutation's description ends with the userErrors codes it declares (mutation-errors.ts).
export const schema = describeMutationErrors(builder.toSchema({ sortSchema: true }));
