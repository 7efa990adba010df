// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isSpecifiedScalarType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputField,
  type GraphQLSchema,
  buildSchema,
} from 'graphql';
import { schema } from '../src/graphql/schema.js';

/** Every type, field, argument, enum value and input field of ours that has no description. */
function undescribed(s: GraphQLSchema): string[] {
  const missing: string[] = [];
  const need = (what: { description?: string | null }, name: string) => {
    if (!what.description?.trim()) missing.push(name);
  };
  const args = (field: GraphQLField<unknown, unknown>, at: string) =>
    field.args.forEach((arg: GraphQLArgument) => need(arg, `${at}(${arg.name}:)`));
  for (const type of Object.values(s.getTypeMap())) {
    // graphql-js's own: String, Int, …, and the introspection types.
    if (type.name.startsWith('__') || isSpecifiedScalarType(type)) continue;
    need(type, type.name);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        need(field, `${type.name}.${field.name}`);
        args(field, `${type.name}.${field.name}`);
      }
    } else if (isInputObjectType(type)) {
      Object.values(type.getFields()).forEach((f: GraphQLInputField) => need(f, `${type.name}.${f.name}`));
    } else if (isEnumType(type)) {
      type.getValues().forEach((v) => need(v, `${type.name}.${v.name}`));
    }
  }
  return missing.sort();
}

test('the check finds what has no description, at every level', () => {
  const sample = buildSchema(`
    "Described." type Query { "Described." a(x: Int): Kind, b: Int }
    "Described." enum Kind { "Described." ONE, TWO }
    input Filter { "Described." c: String, d: String }
  `);
  assert.deepEqual(undescribed(sample), ['Filter', 'Filter.d', 'Kind.TWO', 'Query.a(x:)', 'Query.b']);
});

test('every type, field, argument, enum value and input field has a description', () => {
  const missing = undescribed(schema);
  assert.deepEqual(missing, [], `${missing.length} without a description:\n  ${missing.join('\n  ')}`);
});
