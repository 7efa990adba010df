/**
 * An enum's values with a description each, from one table keyed by value: a `Record` over a
 * Prisma enum (or a const list) makes a value without a description a type error.
 */
export function describedValues<V extends string>(descriptions: Record<V, string>): Record<V, { description: string }> {
  return Object.fromEntries(Object.entries<string>(descriptions).map(([value, description]) => [value, { description }])) as Record<V, { description: string }>;
}
