#!/bin/sh
# Stands in for Prisma's schema engine, which cannot be downloaded where Tenantry is
# built. `prisma generate` only needs the path to exist; nothing should run this.
echo "tenantry: Prisma's schema engine is not installed; migrations are applied by Tenantry itself (see docs/control-database.md)" >&2
exit 1
