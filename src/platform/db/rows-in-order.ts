/** Rows of one query, one per asked key in the keys' order (null where none): what a DataLoader batch returns. */
export function rowsInOrder<T>(keys: readonly string[], rows: readonly T[], keyOf: (row: T) => string): (T | null)[] {
  const byKey = new Map(rows.map((r) => [keyOf(r), r]));
  return keys.map((k) => byKey.get(k) ?? null);
}

/** The one row a statement that writes a row and returns it gave back; none: `what` wrote nothing (e.g. its row was gone). */
export function theOnlyRow<T>(rows: readonly T[], what: string): T {
  const [row] = rows;
  if (row === undefined) throw new Error(`${what}: no row was written`);
  return row;
}

/** Rows of one query grouped by key, in the keys' order (an empty list where none). */
export function rowsGrouped<T>(keys: readonly string[], rows: readonly T[], keyOf: (row: T) => string): T[][] {
  const byKey = new Map<string, T[]>();
  for (const r of rows) {
    const k = keyOf(r);
    const list = byKey.get(k);
    if (list) list.push(r);
    else byKey.set(k, [r]);
  }
  return keys.map((k) => byKey.get(k) ?? []);
}
