// @test-scope once
// Every GraphQL example in README.md and docs/ runs when pasted into GraphiQL: it parses and
// validates against the committed schema.graphql, which includes that every operation of a block
// holding several has a name (an anonymous one must be alone).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { buildSchema, parse, validate } from 'graphql';

async function markdownFiles(): Promise<string[]> {
  const docs = await readdir('docs').catch(() => [] as string[]);
  return ['README.md', ...docs.filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))];
}

test('every graphql block of the README and docs/ is a valid, pasteable document', async () => {
  const schema = buildSchema(await readFile('schema.graphql', 'utf8'));
  let blocks = 0;
  const problems: string[] = [];
  for (const file of await markdownFiles()) {
    const text = await readFile(file, 'utf8');
    for (const match of text.matchAll(/```graphql\n([\s\S]*?)```/g)) {
      blocks++;
      const source = match[1]!;
      const line = text.slice(0, match.index).split('\n').length;
      const where = `${file}:${line}`;
      let document;
      try {
        document = parse(source);
      } catch (err) {
        problems.push(`${where}: ${(err as Error).message}`);
        continue;
      }
      for (const e of validate(schema, document)) problems.push(`${where}: ${e.message}`);
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(blocks >= 10, `found only ${blocks} examples`);
});
