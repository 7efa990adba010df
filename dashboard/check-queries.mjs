// Every GraphQL document in the dashboard (gql`…` templates under src/) validated against
// schema.graphql: a schema change that breaks the dashboard fails `npm run build:dashboard`.
// An optional schema-pending.graphql beside this file adds names agreed with the server's authors
// before they land in schema.graphql (what schema.graphql has wins); delete it once they have.
// Usage: node dashboard/check-queries.mjs [dashboardDir] [schemaFile]
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildASTSchema, Kind, parse, validate } from 'graphql';

const here = path.dirname(fileURLToPath(import.meta.url));
const dashboardDir = path.resolve(process.argv[2] ?? here);
const schemaFile = path.resolve(process.argv[3] ?? path.join(here, '..', 'schema.graphql'));

/** schema.graphql with the pending names it lacks: new types, fields, arguments, input fields and enum values. */
function mergedSchemaDocument() {
  const base = parse(readFileSync(schemaFile, 'utf8'));
  const pendingFile = path.join(dashboardDir, 'schema-pending.graphql');
  if (!existsSync(pendingFile)) return base;
  const definitions = [...base.definitions];
  const indexOf = (name) => definitions.findIndex((d) => d.name?.value === name && !d.kind.endsWith('Extension'));
  for (const def of parse(readFileSync(pendingFile, 'utf8')).definitions) {
    const at = indexOf(def.name.value);
    const extension = def.kind.endsWith('Extension');
    if (at < 0) {
      if (!extension) definitions.push(def); // a new type not landed yet
      continue; // extending a type since renamed: its new name carries the field
    }
    if (!extension) continue; // landed
    const target = definitions[at];
    const key = target.kind === Kind.ENUM_TYPE_DEFINITION ? 'values' : 'fields';
    const members = [...(target[key] ?? [])];
    for (const member of def[key] ?? []) {
      const i = members.findIndex((m) => m.name.value === member.name.value);
      if (i < 0) members.push(member);
      else if (member.arguments?.length) {
        const args = [...(members[i].arguments ?? [])];
        for (const a of member.arguments) if (!args.some((b) => b.name.value === a.name.value)) args.push(a);
        members[i] = { ...members[i], arguments: args };
      }
    }
    definitions[at] = { ...target, [key]: members };
  }
  return { ...base, definitions };
}

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(file);
    else if (/\.(ts|tsx)$/.test(entry.name)) yield file;
  }
}

const schema = buildASTSchema(mergedSchemaDocument());
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
