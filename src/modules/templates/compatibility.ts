import semver from 'semver';

export type Compatibility = 'COMPATIBLE' | 'UPGRADE_AVAILABLE' | 'INCOMPATIBLE';

/**
 * Same major and at (or past) the expected version: COMPATIBLE; same major and older:
 * UPGRADE_AVAILABLE; a different major: INCOMPATIBLE.
 */
export function compatibilityOf(version: string, expected: string): Compatibility {
  const v = semver.parse(version);
  const e = semver.parse(expected);
  if (!v || !e || v.major !== e.major) return 'INCOMPATIBLE';
  return semver.lt(v, e) ? 'UPGRADE_AVAILABLE' : 'COMPATIBLE';
}
