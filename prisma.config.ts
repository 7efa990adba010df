import { defineConfig } from 'prisma/config';

// Prisma's migration engine cannot be installed where Tenantry is built, so
// `prisma migrate` is not used here: src/platform/db/migrations.ts applies prisma/migrations
// and records them in _prisma_migrations exactly as `prisma migrate deploy` would.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
