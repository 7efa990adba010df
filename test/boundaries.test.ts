// @test-scope once: what it tests does not depend on the server under test or on the
// control plane's privileges, so CI runs it in the first configuration only (TEST_SCOPE).
//
// The boundary check (`npm run check:boundaries`, dependency-cruiser with
// .dependency-cruiser.cjs) passes on src/, and fails on a copy of src/ with one violation
// planted: a cycle, Prisma or SQL in a graphql/ folder, a module's internals imported by
// another module, the platform importing a module.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = process.cwd();
const cruiser = path.join(root, 'node_modules', '.bin', 'depcruise');

async function cruise(dir: string): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout } = await run(cruiser, ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd: dir });
    return { ok: true, output: stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

let copy: string;
before(async () => {
  copy = await mkdtemp(path.join(tmpdir(), 'tenantry-boundaries-'));
  await cp(path.join(root, 'src'), path.join(copy, 'src'), { recursive: true });
  for (const file of ['.dependency-cruiser.cjs', 'tsconfig.json', 'package.json']) await cp(path.join(root, file), path.join(copy, file));
  await symlink(path.join(root, 'node_modules'), path.join(copy, 'node_modules'));
});
after(() => rm(copy, { recursive: true, force: true }));

/** Plants `files` in the copy, cruises it, and removes them again. */
async function withPlanted(files: Record<string, string>): Promise<{ ok: boolean; output: string }> {
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(copy, file), text);
  try {
    return await cruise(copy);
  } finally {
    for (const file of Object.keys(files)) await rm(path.join(copy, file), { force: true });
  }
}

test('src/ keeps its boundaries', async () => {
  const r = await cruise(root);
  assert.ok(r.ok, r.output);
});

test('an import cycle fails the check', async () => {
  const r = await withPlanted({
    'src/platform/planted-a.ts': "import { b } from './planted-b.js';\nexport const a = () => b;\n",
    'src/platform/planted-b.ts': "import { a } from './planted-a.js';\nexport const b = () => a;\n",
  });
  assert.equal(r.ok, false);
  assert.match(r.output, /no-circular: src\/platform\/planted-a\.ts/);
});

test('Prisma in a graphql/ folder fails the check', async () => {
  const r = await withPlanted({
    'src/modules/tenants/graphql/planted.ts': "import type { Tenant } from '../../../generated/prisma/client.js';\nexport type Planted = Tenant;\n",
  });
  assert.equal(r.ok, false);
  assert.match(r.output, /graphql-without-database: src\/modules\/tenants\/graphql\/planted\.ts → src\/generated\/prisma\/client\.ts/);
});

test('SQL in a graphql/ folder fails the check', async () => {
  const r = await withPlanted({
    'src/modules/usage/graphql/planted.ts': "import { sessionsOfRole } from '../activity.sql.js';\nexport const planted = sessionsOfRole;\n",
  });
  assert.equal(r.ok, false);
  assert.match(r.output, /graphql-without-database: src\/modules\/usage\/graphql\/planted\.ts → src\/modules\/usage\/activity\.sql\.ts/);
});

test("another module's internals, or a module in the platform, fail the check", async () => {
  const r = await withPlanted({
    'src/modules/quotas/planted.ts': "import { TenantStore } from '../tenants/tenant-store.js';\nexport const planted = TenantStore;\n",
    'src/platform/planted.ts': "import { TenantStore } from '../modules/tenants/index.js';\nexport const planted = TenantStore;\n",
  });
  assert.equal(r.ok, false);
  assert.match(r.output, /module-internals: src\/modules\/quotas\/planted\.ts → src\/modules\/tenants\/tenant-store\.ts/);
  assert.match(r.output, /platform-imports-no-module: src\/platform\/planted\.ts → src\/modules\/tenants\/index\.ts/);
});
