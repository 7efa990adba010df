/** Stamps the template's `__SchemaVersion` row as applied now, by the caller ($1 component, $2 actor, $3 description). */
export const stampSchemaVersion = `UPDATE public."__SchemaVersion" SET "AppliedAt" = pg_catalog.now(), "AppliedBy" = $2::pg_catalog.text, "Description" = $3::pg_catalog.text
 WHERE "Component" = $1::pg_catalog.text`;
