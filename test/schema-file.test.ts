// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { printedSchema } from '../scripts/print-schema.js';

test('schema.graphql is the printed Pothos schema (run `npm run schema:print` after changing the API)', () => {
  assert.equal(readFileSync('schema.graphql', 'utf8'), printedSchema());
});
