import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { withDatabase } from '../../src/platform/db/connection-url.js';
import { controlPlaneUrl, testServerUrl } from './test-tenantry.js';

/** A TEMPLATES_DIR of a test's own: the repository's `default` template plus whatever the test adds. */
export class TestTemplates {
  private constructor(readonly dir: string) {}

  static async create(): Promise<TestTemplates> {
    const dir = await mkdtemp(path.join(tmpdir(), 'tenantry-templates-'));
    await cp('templates/default', path.join(dir, 'default'), { recursive: true });
    return new TestTemplates(dir);
  }

  async add(name: string, version: string, manifest: object, sql: string): Promise<void> {
    await mkdir(path.join(this.dir, name, version), { recursive: true });
    await this.setManifest(name, version, manifest);
    await writeFile(path.join(this.dir, name, version, 'migration.sql'), sql);
  }

  setManifest(name: string, version: string, manifest: object): Promise<void> {
    return writeFile(path.join(this.dir, name, version, 'manifest.json'), JSON.stringify(manifest));
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

/** Runs `fn` as the superuser inside one database of the test server. */
export async function inDatabase<T>(database: string, fn: (c: pg.Client) => Promise<T>, serverUrl = testServerUrl()): Promise<T> {
  const c = new pg.Client({ connectionString: withDatabase(serverUrl, database) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Puts pg_trgm back at an old version inside a tenant database, the way a change made by hand
 * by the control plane's role would (so its objects belong to that role, as Tenantry's own do,
 * superuser or not).
 */
export async function downgradeTrgm(database: string, version = '1.3'): Promise<void> {
  const role = decodeURIComponent(new URL(controlPlaneUrl()).username) || 'postgres';
  await inDatabase(database, async (c) => {
    await c.query(`SET ROLE "${role.replace(/"/g, '""')}"`);
    await c.query(`DROP EXTENSION pg_trgm CASCADE; CREATE EXTENSION pg_trgm WITH SCHEMA extensions VERSION '${version}'`);
  });
}
