import type pg from 'pg';
import { UserError } from '../../platform/errors.js';
import type { ExtensionPolicy, ExtensionRequirement } from './extension-policy.js';
import { availableExtensionVersions, createExtension } from './extensions.sql.js';
import { compareExtensionVersions, meetsMinimum } from './extension-versions.js';

interface InstalledExtension {
  name: string;
  version: string;
}

/**
 * Installs a template's extensions at the newest version the server offers: every
 * required one (or a clear EXTENSION_UNAVAILABLE), and each optional one the server has.
 */
export async function installExtensions(
  client: pg.ClientBase,
  policy: ExtensionPolicy,
): Promise<InstalledExtension[]> {
  const all = [...policy.required, ...policy.optional];
  const { rows } = await client.query<{ name: string; version: string }>(availableExtensionVersions, [all.map((e) => e.name)]);
  const newest = (req: ExtensionRequirement) =>
    rows
      .filter((r) => r.name === req.name && meetsMinimum(r.version, req.minVersion))
      .map((r) => r.version)
      .sort(compareExtensionVersions)
      .at(-1);

  const installed: InstalledExtension[] = [];
  for (const req of all) {
    const version = newest(req);
    const required = policy.required.includes(req);
    if (!version && required) {
      throw new UserError(
        'EXTENSION_UNAVAILABLE',
        `the server does not offer the required extension ${req.name}${req.minVersion ? ` >= ${req.minVersion}` : ''}`,
        'template',
      );
    }
    if (!version) continue;
    try {
      await installExtension(client, req.name, version);
    } catch (err) {
      // An optional one the control plane may not install is left out.
      if (required || !(err instanceof UserError)) throw err;
      continue;
    }
    installed.push({ name: req.name, version });
  }
  return installed;
}

/**
 * CREATE EXTENSION into the extensions schema. A control plane that is not superuser can
 * install trusted extensions only (pg_trgm, pgvector, ...): an untrusted one is
 * EXTENSION_UNAVAILABLE with the reason, not a masked error.
 */
export async function installExtension(client: pg.ClientBase, name: string, version: string): Promise<void> {
  try {
    await client.query(createExtension(name, version));
  } catch (err) {
    if ((err as { code?: string }).code === '42501') {
      throw new UserError('EXTENSION_UNAVAILABLE', `extension ${name} needs a superuser to install (it is not a trusted extension), and the control plane is not one: ${(err as Error).message}`, 'template');
    }
    throw err;
  }
}
