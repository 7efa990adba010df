import semver from 'semver';

export type Compatibility = 'COMPATIBLE' | 'UPGRADE_AVAILABLE' | 'INCOMPATIBLE';

export function compatibilityOf(version: string, expected: string): Compatibility {
  const v = semver.parse(version);
  const e = semver.parse(expected);
  if (!v || !e || v.major !== e.major) return 'INCOMPATIBLE';
  return semver.lt(v, e) ? 'UPGRADE_AVAILABLE' : 'COMPATIBLE';
}
