import type { ControlClient } from '../../platform/db/control-client.js';
import type { OperationKind } from '../../generated/prisma/enums.js';
import { UserError } from '../../platform/errors.js';

export interface RunOrderTenant {
  id: string;
  slug: string;
}

export interface CanaryChoice {
  /** Slugs the operator picked as canaries (validated, in order). */
  picked: string[];
  excluded: string[];
}

/**
 * Checks the operator's `canary` and `exclude` lists against the tenants the operation would
 * take: a slug that is not one of them, or one in both lists, is INVALID_INPUT naming it (an
 * exclusion with a typo must not upgrade the tenant it meant to spare).
 */
export function validateCanaryChoice(
  input: { canary?: readonly string[] | null; exclude?: readonly string[] | null; canarySize?: number | null },
  tenants: readonly RunOrderTenant[],
  settledIds: ReadonlySet<string>,
): CanaryChoice {
  const picked = [...new Set(input.canary ?? [])];
  const excluded = [...new Set(input.exclude ?? [])];
  const known = new Map(tenants.map((t) => [t.slug, t]));
  for (const [field, slugs] of [['canary', picked], ['exclude', excluded]] as const) {
    const missing = slugs.filter((s) => !known.has(s));
    if (missing.length) throw new UserError('INVALID_INPUT', `not among the tenants this operation would run on (ACTIVE, of its template): ${missing.join(', ')}`, field);
  }
  const both = picked.filter((s) => excluded.includes(s));
  if (both.length) throw new UserError('INVALID_INPUT', `both a canary and excluded: ${both.join(', ')}`, 'exclude');
  const done = picked.filter((s) => settledIds.has(known.get(s)!.id));
  if (done.length) throw new UserError('INVALID_INPUT', `already at the target, so as canaries they would prove nothing: ${done.join(', ')}`, 'canary');
  if (input.canarySize != null && input.canarySize < picked.length) {
    throw new UserError('INVALID_INPUT', `canarySize ${input.canarySize} is smaller than the ${picked.length} canaries picked`, 'canarySize');
  }
  return { picked, excluded };
}

/**
 * How an operation orders its tenants, and so which go first as canaries:
 *
 *   1. the tenants the operator picked (`canary`), in the order given;
 *   2. then the others with work to do, by slug, except that tenants whose latest result in an
 *      operation of the same kind FAILED come after the rest: they most likely fail again for
 *      their own reasons, and a canary should tell about the step, not about one tenant;
 *   3. then the tenants already at the target (recorded done when the operation starts).
 *
 * The first `canarySize` of that order are the canaries. A canary that fails because of its
 * own objects (see failure-cause.ts) is recorded FAILED and the next tenant in the order takes
 * its place; a canary that fails because of the step stops the operation.
 *
 * `tenants` come sorted by slug.
 */
export async function runOrder<T extends RunOrderTenant>(
  db: ControlClient,
  kind: OperationKind,
  tenants: readonly T[],
  choice: CanaryChoice,
  settledIds: ReadonlySet<string>,
): Promise<T[]> {
  const remaining = tenants.filter((t) => !choice.excluded.includes(t.slug));
  const picked = choice.picked.map((slug) => remaining.find((t) => t.slug === slug)!);
  const rest = remaining.filter((t) => !choice.picked.includes(t.slug) && !settledIds.has(t.id));
  const failedLast = await latestResultFailed(db, kind, rest.map((t) => t.id));
  return [
    ...picked,
    ...rest.filter((t) => !failedLast.has(t.id)),
    ...rest.filter((t) => failedLast.has(t.id)),
    ...remaining.filter((t) => settledIds.has(t.id)),
  ];
}

/** The tenants whose latest finished result in an operation of this kind is FAILED (one query). */
async function latestResultFailed(db: ControlClient, kind: OperationKind, tenantIds: readonly string[]): Promise<Set<string>> {
  if (tenantIds.length === 0) return new Set();
  const rows = await db.$queryRaw<{ tenant_id: string; status: string }[]>`
    SELECT DISTINCT ON (i.tenant_id) i.tenant_id::text AS tenant_id, i.status::text AS status
    FROM operation_items i JOIN operations o ON o.id = i.operation_id
    WHERE o.kind = ${kind}::"OperationKind" AND i.tenant_id = ANY(${[...tenantIds]}::uuid[])
      AND i.status IN ('SUCCEEDED', 'FAILED') AND i.finished_at IS NOT NULL
    ORDER BY i.tenant_id, i.finished_at DESC`;
  return new Set(rows.filter((r) => r.status === 'FAILED').map((r) => r.tenant_id));
}
