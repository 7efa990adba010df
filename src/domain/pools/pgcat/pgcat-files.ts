// pgcat.toml on disk: written atomically (PgBouncer's helper), with a copy of the last one
// PgCat accepted. One file, unlike PgBouncer's pair, and it holds passwords: mode 0600.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic, type FileOwner } from '../pgbouncer/config-files.js';
import type { PgCatFiles } from './pgcat-config.js';

const CONFIG_MODE = 0o600;

export function writePgCatConfig(files: PgCatFiles, toml: string, owner?: FileOwner): Promise<void> {
  return writeFileAtomic(files.config, toml, CONFIG_MODE, owner);
}

/** Records the configuration PgCat just accepted. */
export function savePgCatLastGood(files: PgCatFiles, toml: string, owner?: FileOwner): Promise<void> {
  return writeFileAtomic(files.lastGoodConfig, toml, CONFIG_MODE, owner);
}

/** Puts the last accepted configuration back in place; false when there is none. */
export async function restorePgCatLastGood(files: PgCatFiles, owner?: FileOwner): Promise<boolean> {
  const toml = await readFile(files.lastGoodConfig, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (toml === null) return false;
  await writePgCatConfig(files, toml, owner);
  return true;
}
