-- AlterTable
ALTER TABLE "quotas" ADD COLUMN     "roster_xid" BIGINT;

-- AlterTable
ALTER TABLE "tenants" ADD COLUMN     "roster_xid" BIGINT;

-- CreateTable
CREATE TABLE "usage_leases" (
    "cluster_id" UUID NOT NULL,
    "holder" TEXT NOT NULL,
    "epoch" INTEGER NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "usage_leases_pkey" PRIMARY KEY ("cluster_id")
);

-- CreateIndex
CREATE INDEX "quotas_roster_xid_idx" ON "quotas"("roster_xid");

-- CreateIndex
CREATE INDEX "tenants_roster_xid_idx" ON "tenants"("roster_xid");

-- Below: what Prisma does not model.

-- A lease is worth nothing after a crash, and the leader renews it every interval:
-- unlogged, so renewing writes no WAL.
ALTER TABLE "usage_leases" SET UNLOGGED;

-- Lease epochs: a sequence survives a crash (the unlogged table does not), so a new
-- holder's epoch is always higher than any holder's before it.
CREATE SEQUENCE "usage_lease_epoch" AS integer;

-- The usage sampler keeps a roster of ACTIVE tenants and reads only the rows changed since
-- its last read: rows whose roster_xid is at least the xmin of its previous snapshot (any
-- transaction that had not committed by then has an id at least that high), so commit
-- order and clock skew cannot hide a change.
CREATE FUNCTION "tenantry_stamp_roster_xid"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.roster_xid := pg_catalog.pg_current_xact_id()::text::bigint;
  RETURN NEW;
END
$$;

CREATE TRIGGER "tenants_roster_xid" BEFORE INSERT OR UPDATE OF "status", "slug", "role_name", "cluster_id" ON "tenants"
  FOR EACH ROW EXECUTE FUNCTION "tenantry_stamp_roster_xid"();

CREATE TRIGGER "quotas_roster_xid" BEFORE INSERT OR UPDATE OF "max_connections" ON "quotas"
  FOR EACH ROW EXECUTE FUNCTION "tenantry_stamp_roster_xid"();
