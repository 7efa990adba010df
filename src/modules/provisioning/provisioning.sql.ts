/**
 * Stamps the template's `__SchemaVersion` row as applied now, by the caller ($1 component, $2
 * actor, $3 description), and returns it (run only once the table is known to be ours and locked).
 */
export const stampSchemaVersion = `UPDATE public."__SchemaVersion" SET "AppliedAt" = pg_catalog.now(), "AppliedBy" = $2::pg_catalog.text, "Description" = $3::pg_catalog.text
 WHERE "Component" = $1::pg_catalog.text
 RETURNING "Version" AS version, "AppliedAt" AS "appliedAt", "AppliedBy" AS "appliedBy", "Description" AS description`;
