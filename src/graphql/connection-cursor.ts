import { GraphQLError } from 'graphql';

/** Opaque keyset cursors: a JSON tuple, base64url-encoded. */
export function encodeCursor(parts: readonly string[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor<T extends string[]>(cursor: string | undefined, length: number): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parts: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parts) && parts.length === length && parts.every((p) => typeof p === 'string')) return parts as T;
  } catch {
    // fall through
  }
  throw new GraphQLError('invalid cursor', { extensions: { code: 'BAD_USER_INPUT' } });
}
