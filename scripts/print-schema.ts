// Writes schema.graphql from the Pothos schema. test/schema-file.test.ts fails when it is stale.
import { writeFileSync } from 'node:fs';
import { printSchema, lexicographicSortSchema } from 'graphql';
import { schema } from '../src/graphql/schema.js';

export function printedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync('schema.graphql', printedSchema());
  console.log('schema.graphql written');
}
