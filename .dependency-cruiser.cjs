/**
 * The boundaries of src/ (docs/architecture.md), checked by `npm run check:boundaries` in CI:
 * no import cycle; a module is entered only through its index.ts (its GraphQL through
 * graphql/index.ts); no database access from a graphql/ folder; the platform imports no module.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make the start order and the layering impossible to read.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'module-internals',
      severity: 'error',
      comment: 'Another module is used through its index.ts (and its GraphQL types through graphql/index.ts) only.',
      from: { path: '^src/modules/([^/]+)/' },
      to: {
        path: '^src/modules/([^/]+)/',
        pathNot: ['^src/modules/$1/', '^src/modules/[^/]+/index\\.ts$', '^src/modules/[^/]+/graphql/index\\.ts$'],
      },
    },
    {
      name: 'outside-into-module-internals',
      severity: 'error',
      comment: 'Code outside the modules (the GraphQL kit, HTTP, the composition root, scripts) uses a module through its index.ts.',
      from: { path: '^(src|scripts)/', pathNot: '^src/modules/' },
      to: { path: '^src/modules/', pathNot: ['^src/modules/[^/]+/index\\.ts$', '^src/modules/[^/]+/graphql/index\\.ts$'] },
    },
    {
      name: 'graphql-without-database',
      severity: 'error',
      comment: 'Resolvers reach data through services: no Prisma, SQL, pg or control client in a graphql/ folder.',
      from: { path: '/graphql/' },
      to: {
        path: ['^src/generated/', '\\.sql\\.ts$', '^src/platform/db/', '(^|/)node_modules/(pg|pg-format|@prisma)/'],
        pathNot: '^src/platform/db/reachability\\.ts$',
      },
    },
    {
      name: 'platform-imports-no-module',
      severity: 'error',
      comment: 'Shared infrastructure knows no domain.',
      from: { path: '^src/platform/' },
      to: { path: ['^src/modules/', '^src/graphql/', '^src/http/', '^src/server\\.ts$'] },
    },
    {
      name: 'modules-below-the-front',
      severity: 'error',
      comment: 'Modules know neither the HTTP front nor the composition root (their GraphQL uses src/graphql, the kit).',
      from: { path: '^src/modules/' },
      to: { path: ['^src/http/', '^src/server\\.ts$', '^src/main\\.ts$'] },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules', '^src/generated/'] },
    tsPreCompilationDeps: true,
    parser: 'swc',
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
