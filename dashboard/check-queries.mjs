// Every GraphQL document in the dashboard (gql`…` templates under src/) validated against
// schema.graphql: a schema change that breaks the dashboard fails `npm run build:dashboard`.
// Usage: node dashboard/check-queries.mjs [dashboardDir] [schemaFile]
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, parse, validate } from 'graphql';

const here = path.dirname(fileURLToPath(import.meta.url));
const dashboardDir = path.resolve(process.argv[2] ?? here);
const schemaFile = path.resolve(process.argv[3] ?? path.join(here, '..', 'schema.graphql'));

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(file);
    else if (/\.(ts|tsx)$/.test(entry.name)) yield file;
  }
}

const schema = buildSchema(readFileSync(schemaFile, 'utf8'));
const problems = [];
let documents = 0;
for (const file of sourceFiles(path.join(dashboardDir, 'src'))) {
  const text = readFileSync(file, 'utf8');
  for (const match of text.matchAll(/\bgql`([^`]*)`/g)) {
    documents++;
    const line = text.slice(0, match.index).split('\n').length;
    const where = `${path.relative(dashboardDir, file)}:${line}`;
    if (match[1].includes('${')) {
      problems.push(`${where}: no interpolation in gql documents (use variables)`);
      continue;
    }
    try {
      for (const error of validate(schema, parse(match[1]))) problems.push(`${where}: ${error.message}`);
    } catch (err) {
      problems.push(`${where}: ${err.message}`);
    }
  }
}
if (documents === 0) problems.push(`no gql documents found under ${dashboardDir}/src`);
if (problems.length > 0) {
  console.error(`dashboard queries do not match ${path.basename(schemaFile)}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`dashboard: ${documents} GraphQL documents valid against ${path.basename(schemaFile)}`);
