// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maskQuery } from '../src/modules/usage/query-text.js';

test('literals are masked: strings, escapes, dollar quotes, numbers; identifiers and parameters stay', () => {
  assert.equal(maskQuery(`SELECT * FROM users WHERE email = 'ann@example.com' AND id = 42`), 'SELECT * FROM users WHERE email = ? AND id = ?');
  assert.equal(maskQuery(`UPDATE t SET note = 'it''s secret', n = -3.5e2 WHERE id = $1`), 'UPDATE t SET note = ?, n = ? WHERE id = $1');
  assert.equal(maskQuery(`SELECT $$password: hunter2$$, $fn$body 'x'$fn$, E'\\x41'`), 'SELECT ?, ?, ?');
  assert.equal(maskQuery(`SELECT col1, t2.x3 FROM table_2024 t2 LIMIT 10`), 'SELECT col1, t2.x3 FROM table_2024 t2 LIMIT ?');
  assert.equal(maskQuery(`INSERT INTO documents (id, content)\n  VALUES ('d1', '{"card": "4111 1111"}')`), 'INSERT INTO documents (id, content) VALUES (?, ?)');
});

test('masked before cut: at most 100 characters, never the start of a literal', () => {
  const secret = 'x'.repeat(200);
  const long = `SELECT ${'a, '.repeat(40)} '${secret}'`;
  const shown = maskQuery(long)!;
  assert.ok(shown.length <= 100);
  assert.ok(!shown.includes('xxx'));
  const unterminated = maskQuery(`SELECT 'secret-that-never-ends`);
  assert.equal(unterminated, 'SELECT ?');
  assert.equal(maskQuery(null), null);
});
