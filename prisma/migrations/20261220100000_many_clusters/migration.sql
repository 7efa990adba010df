-- Many clusters (issue 17): registered servers with a status, region, labels and a tenant
-- cap; where a tenant asked to be placed; and tenant moves between clusters.

-- CreateEnum
CREATE TYPE "ClusterStatus" AS ENUM ('ACTIVE', 'CORDONED', 'DRAINING');

-- CreateEnum
CREATE TYPE "TenantMoveMode" AS ENUM ('ONLINE', 'OFFLINE');

-- CreateEnum
CREATE TYPE "TenantMoveStatus" AS ENUM ('RUNNING', 'SUCCEEDED', 'FAILED', 'ROLLED_BACK');

-- AlterEnum
ALTER TYPE "OperationKind" ADD VALUE 'DRAIN_CLUSTER';

-- AlterTable
ALTER TABLE "clusters" ADD COLUMN "status" "ClusterStatus" NOT NULL DEFAULT 'ACTIVE',
ADD COLUMN "region" TEXT,
ADD COLUMN "labels" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN "max_tenants" INTEGER,
ADD COLUMN "connection_url_env" TEXT,
ADD COLUMN "connection_url_sealed" TEXT,
ADD COLUMN "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- AlterTable
ALTER TABLE "tenants" ADD COLUMN "placement" JSONB;

-- CreateTable
CREATE TABLE "tenant_moves" (
    "id" UUID NOT NULL,
    "tenant_id" UUID NOT NULL,
    "source_cluster_id" UUID NOT NULL,
    "target_cluster_id" UUID NOT NULL,
    "mode" "TenantMoveMode" NOT NULL,
    "status" "TenantMoveStatus" NOT NULL DEFAULT 'RUNNING',
    "step" TEXT,
    "progress" JSONB NOT NULL DEFAULT '{}',
    "options" JSONB NOT NULL DEFAULT '{}',
    "error" TEXT,
    "requested_by" TEXT NOT NULL,
    "retained_database" TEXT,
    "retained_until" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "tenant_moves_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "tenant_moves_tenant_id_created_at_idx" ON "tenant_moves"("tenant_id", "created_at");

-- CreateIndex
CREATE INDEX "tenant_moves_status_idx" ON "tenant_moves"("status");

-- AddForeignKey
ALTER TABLE "tenant_moves" ADD CONSTRAINT "tenant_moves_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "tenant_moves" ADD CONSTRAINT "tenant_moves_source_cluster_id_fkey" FOREIGN KEY ("source_cluster_id") REFERENCES "clusters"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "tenant_moves" ADD CONSTRAINT "tenant_moves_target_cluster_id_fkey" FOREIGN KEY ("target_cluster_id") REFERENCES "clusters"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
