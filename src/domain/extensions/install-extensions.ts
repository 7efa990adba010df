import type pg from 'pg';
import { UserError } from '../errors.js';
import type { ExtensionRequirement } from '../templates/template-catalog.js';
import { availableExtensionVersions, createExtension } from '../../sql/extensions.sql.js';
import { compareExtensionVersions, meetsMinimum } from './extension-versions.js';

export interface InstalledExtension {
  name: string;
  version: string;
}

/**
 * Installs a template's extensions at the newest version the server offers: every
 * required one (or a clear EXTENSION_UNAVAILABLE), and each optional one the server has.
 */
export async function installExtensions(
  client: pg.ClientBase,
  policy: { required: ExtensionRequirement[]; optional: ExtensionRequirement[] },
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
  for (const req of policy.required) {
    const version = newest(req);
    if (!version) {
      throw new UserError(
        'EXTENSION_UNAVAILABLE',
        `the server does not offer the required extension ${req.name}${req.minVersion ? ` >= ${req.minVersion}` : ''}`,
        'template',
      );
    }
    await client.query(createExtension(req.name, version));
    installed.push({ name: req.name, version });
  }
  for (const req of policy.optional) {
    const version = newest(req);
    if (!version) continue;
    await client.query(createExtension(req.name, version));
    installed.push({ name: req.name, version });
  }
  return installed;
}
