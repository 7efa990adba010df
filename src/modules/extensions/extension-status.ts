import type { ExtensionPolicy } from './extension-policy.js';
import { compareExtensionVersions, meetsMinimum } from './extension-versions.js';

export type ExtensionStatus = 'OK' | 'OUTDATED' | 'MISSING' | 'UNAVAILABLE';

export interface ExtensionReport {
  name: string;
  required: boolean;
  installedVersion: string | null;
  /** The newest version the server offers. */
  availableVersion: string | null;
  requiredVersion: string | null;
  status: ExtensionStatus;
}

/**
 * A tenant database's extensions against its template's policy and what the server offers:
 * OK; OUTDATED (below the minimum, or below the newest offered when the policy tracks it,
 * and the server can do better); MISSING (required, offered, not installed); UNAVAILABLE
 * (required, and the server does not offer it at the minimum). Optional extensions are
 * reported once installed.
 */
export function extensionReport(
  policy: ExtensionPolicy,
  installed: ReadonlyMap<string, string>,
  offered: ReadonlyMap<string, readonly string[]>,
): ExtensionReport[] {
  const entries = [...policy.required.map((r) => ({ r, required: true })), ...policy.optional.map((r) => ({ r, required: false }))];
  return entries.flatMap(({ r, required }): ExtensionReport[] => {
    const versions = [...(offered.get(r.name) ?? [])].sort(compareExtensionVersions);
    const newest = versions.at(-1) ?? null;
    const usable = versions.filter((v) => meetsMinimum(v, r.minVersion));
    const have = installed.get(r.name) ?? null;
    const base = { name: r.name, required, installedVersion: have, availableVersion: newest, requiredVersion: r.minVersion ?? null };
    if (!have) {
      if (!required) return [];
      return [{ ...base, status: usable.length ? 'MISSING' : 'UNAVAILABLE' }];
    }
    if (!meetsMinimum(have, r.minVersion)) return [{ ...base, status: usable.length ? 'OUTDATED' : 'UNAVAILABLE' }];
    if (r.track && newest && compareExtensionVersions(have, newest) < 0) return [{ ...base, status: 'OUTDATED' }];
    return [{ ...base, status: 'OK' }];
  });
}

/** Version lists by extension name, from rows of pg_available_extension_versions. */
export function offeredVersions(rows: readonly { name: string; version: string }[]): Map<string, string[]> {
  const offered = new Map<string, string[]>();
  for (const r of rows) offered.set(r.name, [...(offered.get(r.name) ?? []), r.version]);
  return offered;
}
