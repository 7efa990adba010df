import { GraphQLError } from 'graphql';
import type { Config } from '../platform/config.js';

/** Rows a connection or list returns when the caller names no size. */
export const DEFAULT_PAGE_SIZE = 20;

type PageArgs = { first?: number | null; last?: number | null };

type Limits = Pick<Config, 'GRAPHQL_MAX_PAGE_SIZE'>;

/** The rows a page asks for, as a cost multiplier: first or last (default 20), at most the maximum (more is refused anyway). */
export function pageSizeOf(args: PageArgs, config: Limits): number {
  const asked = args.first ?? args.last ?? DEFAULT_PAGE_SIZE;
  return Math.min(Math.max(asked, 0), config.GRAPHQL_MAX_PAGE_SIZE);
}

/**
 * Options for resolveCursorConnection, after refusing a page larger than
 * GRAPHQL_MAX_PAGE_SIZE: a caller asking for 500 rows is told so, never silently given 100.
 */
export function pageOptions(args: PageArgs, config: Limits): { defaultSize: number; maxSize: number } {
  for (const name of ['first', 'last'] as const) assertPageSize(name, args[name], config);
  return { defaultSize: Math.min(DEFAULT_PAGE_SIZE, config.GRAPHQL_MAX_PAGE_SIZE), maxSize: config.GRAPHQL_MAX_PAGE_SIZE };
}

/** A list argument such as history(first): 0 to GRAPHQL_MAX_PAGE_SIZE, or a BAD_USER_INPUT error naming the maximum. */
export function assertPageSize(name: string, value: number | null | undefined, config: Limits): void {
  if (value == null) return;
  const max = config.GRAPHQL_MAX_PAGE_SIZE;
  if (value < 0 || value > max) {
    throw new GraphQLError(`${name} must be between 0 and ${max} (GRAPHQL_MAX_PAGE_SIZE), not ${value}; page with the cursors for more`, {
      extensions: { code: 'BAD_USER_INPUT', argument: name, max },
    });
  }
}
