import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { getDMMF } from '@prisma/get-dmmf';
import pg from 'pg';
import format from 'pg-format';
import { withDatabase } from '../src/platform/db/connection-url.js';
import { loadControlMigrations, migrateControlDatabase, prismaMigrationsLedger } from '../src/platform/db/control-migrations.js';
import { PRISMA_MIGRATE_LOCK } from '../src/platform/locks/lock-names.js';
import { applyMigrations, checksumOf, MigrationChecksumError } from '../src/platform/db/migrations.js';
import { testServerUrl } from './support/test-tenantry.js';

const database = `tenantry_schema_${process.pid}`;
const admin = new pg.Client({ connectionString: testServerUrl() });
let client: pg.Client;

before(async () => {
  await admin.connect();
  await admin.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', database));
  await admin.query(format('CREATE DATABASE %I', database));
  client = new pg.Client({ connectionString: withDatabase(testServerUrl(), database) });
  await client.connect();
});

after(async () => {
  await client.end();
  await admin.query(format('DROP DATABASE IF EXISTS %I WITH (FORCE)', database));
  await admin.end();
});

/** Prisma scalar and native types, as PostgreSQL's information_schema names them. */
function expectedSqlType(field: { type: string; kind: string; nativeType?: readonly [string, readonly string[]] | null }): string {
  if (field.kind === 'enum') return `USER-DEFINED:${field.type}`;
  const native = field.nativeType?.[0];
  if (native === 'Uuid') return 'uuid';
  if (native === 'Char') return 'character';
  if (native === 'JsonB' || field.type === 'Json') return 'jsonb';
  if (native === 'Timestamptz') return 'timestamp with time zone';
  switch (field.type) {
    case 'String': return 'text';
    case 'Int': return 'integer';
    case 'DateTime': return 'timestamp(3) without time zone';
    case 'Boolean': return 'boolean';
    case 'Float': return 'double precision';
    case 'Bytes': return 'bytea';
    case 'BigInt': return 'bigint';
    default: throw new Error(`no mapping for ${field.type}`);
  }
}

test('the SQL migrations create exactly the tables, columns and indexes schema.prisma describes', async () => {
  const applied = await migrateControlDatabase(client);
  assert.ok(applied.length >= 1);

  const dmmf = await getDMMF({ datamodel: readFileSync('prisma/schema.prisma', 'utf8') });
  if (!('datamodel' in dmmf)) throw new Error(`schema.prisma does not parse: ${JSON.stringify(dmmf)}`);
  const { datamodel } = dmmf;
  const expected = new Map<string, string>();
  for (const model of datamodel.models) {
    for (const field of model.fields) {
      if (field.kind === 'object') continue;
      // A list is an array column; Prisma's own migrations leave it nullable (an empty list is its default).
      const type = field.isList ? `ARRAY:_${expectedSqlType(field as never)}` : expectedSqlType(field as never);
      expected.set(`${model.dbName ?? model.name}.${field.dbName ?? field.name}`, `${type} ${field.isRequired && !field.isList ? 'NOT NULL' : 'NULL'}`);
    }
  }
  const { rows } = await client.query<{ table_name: string; column_name: string; data_type: string; udt_name: string; is_nullable: string }>(
    `SELECT table_name, column_name, data_type, udt_name, is_nullable FROM information_schema.columns
     WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`,
  );
  const actual = new Map(
    rows.map((r) => [
      `${r.table_name}.${r.column_name}`,
      `${r.data_type === 'USER-DEFINED' ? `USER-DEFINED:${r.udt_name}` : r.data_type === 'ARRAY' ? `ARRAY:${r.udt_name}` : r.data_type} ${r.is_nullable === 'YES' ? 'NULL' : 'NOT NULL'}`,
    ]),
  );
  assert.deepEqual(Object.fromEntries([...actual].sort()), Object.fromEntries([...expected].sort()));

  // Indexes: every @@index/@@unique/@id of the schema exists over the same columns.
  const idx = await client.query<{ table_name: string; columns: string[]; is_unique: boolean; is_primary: boolean }>(
    `SELECT t.relname AS table_name, i.indisunique AS is_unique, i.indisprimary AS is_primary,
            array_agg(a.attname::text ORDER BY k.ord) AS columns
     FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
     CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
     WHERE n.nspname = 'public' AND t.relname <> '_prisma_migrations'
     GROUP BY t.relname, i.indexrelid, i.indisunique, i.indisprimary`,
  );
  const actualIndexes = idx.rows.map((r) => `${r.table_name}(${r.columns.join(',')})${r.is_primary ? ' id' : r.is_unique ? ' unique' : ''}`).sort();
  const dbNameOf = (model: string, field: string) => {
    const m = datamodel.models.find((x) => x.name === model)!;
    return m.fields.find((f) => f.name === field)!.dbName ?? field;
  };
  const tableOf = (model: string) => datamodel.models.find((x) => x.name === model)!.dbName ?? model;
  const expectedIndexes = datamodel.indexes
    .map((i) => `${tableOf(i.model)}(${i.fields.map((f) => dbNameOf(i.model, f.name)).join(',')})${i.type === 'id' ? ' id' : i.type === 'unique' ? ' unique' : ''}`)
    .sort();
  assert.deepEqual(actualIndexes, expectedIndexes);

  // Enums carry the same values.
  for (const e of datamodel.enums) {
    const { rows: labels } = await client.query<{ enumlabel: string }>(
      `SELECT enumlabel FROM pg_enum WHERE enumtypid = $1::regtype ORDER BY enumsortorder`,
      [format('%I', e.name)],
    );
    assert.deepEqual(labels.map((l) => l.enumlabel), e.values.map((v) => v.name), `enum ${e.name}`);
  }
});

test('migrations are recorded as `prisma migrate deploy` records them, and applying again does nothing', async () => {
  const migrations = await loadControlMigrations();
  const { rows } = await client.query(`SELECT migration_name, checksum, finished_at, applied_steps_count, rolled_back_at FROM _prisma_migrations ORDER BY migration_name`);
  assert.deepEqual(
    rows.map((r) => [r.migration_name, r.checksum, r.finished_at instanceof Date, r.applied_steps_count, r.rolled_back_at]),
    migrations.map((m) => [m.name, checksumOf(readFileSync(`prisma/migrations/${m.name}/migration.sql`, 'utf8')), true, 1, null]),
  );
  assert.deepEqual(await migrateControlDatabase(client), []);
});

test('a migration edited after it was applied is refused, not re-run', async () => {
  const migrations = await loadControlMigrations();
  const edited = migrations.map((m, i) => (i === 0 ? { ...m, sql: `${m.sql}\n-- edited`, checksum: checksumOf(`${m.sql}\n-- edited`) } : m));
  await assert.rejects(applyMigrations(client, edited, prismaMigrationsLedger, { lockKey: PRISMA_MIGRATE_LOCK }), MigrationChecksumError);
});

test('a failing migration rolls back whole and is not recorded', async () => {
  const broken = { name: '29991231000000_broken', sql: 'CREATE TABLE half_made (id int); SELECT * FROM no_such_table;', checksum: 'x' };
  await assert.rejects(applyMigrations(client, [broken], prismaMigrationsLedger, { lockKey: PRISMA_MIGRATE_LOCK }), /migration 29991231000000_broken failed/);
  const { rowCount } = await client.query(`SELECT 1 FROM pg_class WHERE relname = 'half_made'`);
  assert.equal(rowCount, 0);
  const recorded = await client.query(`SELECT 1 FROM _prisma_migrations WHERE migration_name = $1`, [broken.name]);
  assert.equal(recorded.rowCount, 0);
});
