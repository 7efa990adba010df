import pg from 'pg';
import format from 'pg-format';
import { withDatabase } from './connection-url.js';
import { migrateControlDatabase } from './control-migrations.js';
import { withCatalogSession } from './session-settings.js';
import type { Migration } from './migrations.js';

/**
 * Creates the control database on the server if it is missing (no tenant role may
 * connect to it) and brings it to the newest migration.
 */
export async function prepareControlDatabase(serverUrl: string, name: string): Promise<{ url: string; applied: Migration[] }> {
  await withCatalogSession(serverUrl, {}, async (admin) => {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      await admin.query(format('CREATE DATABASE %I', name)).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // another server created it first
      });
    }
    await admin.query(format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', name));
  });
  const url = withDatabase(serverUrl, name);
  const client = new pg.Client({ connectionString: url, application_name: 'tenantry-migrate' });
  await client.connect();
  try {
    return { url, applied: await migrateControlDatabase(client) };
  } finally {
    await client.end();
  }
}
