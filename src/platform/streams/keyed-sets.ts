/** Adds `item` to the set of `key`; returns how to take it out again (an emptied set goes). */
export function addToSet<K, V>(map: Map<K, Set<V>>, key: K, item: V): () => void {
  const set = map.get(key) ?? new Set<V>();
  map.set(key, set.add(item));
  return () => {
    set.delete(item);
    if (set.size === 0 && map.get(key) === set) map.delete(key);
  };
}
