import { decodeGlobalID } from '@pothos/plugin-relay';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Local ids are UUIDs; anything else cannot name a record (and must not reach a uuid column). */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}

/** The local id in a global id of `typename` (a bare UUID is accepted too); null when it names nothing of that type. */
export function localIdOf(id: string, typename: string): string | null {
  if (isUuid(id)) return id;
  try {
    const decoded = decodeGlobalID(id);
    return decoded.typename === typename && isUuid(decoded.id) ? decoded.id : null;
  } catch {
    return null;
  }
}
