import semver from 'semver';

/** Extension versions are loose ("1.6", "0.5.0", "12.1-1"): compared as coerced semver. */
export function compareExtensionVersions(a: string, b: string): number {
  const va = semver.coerce(a);
  const vb = semver.coerce(b);
  if (!va || !vb) return a.localeCompare(b);
  return semver.compare(va, vb);
}

export function meetsMinimum(version: string, minimum: string | undefined): boolean {
  return minimum === undefined || compareExtensionVersions(version, minimum) >= 0;
}
