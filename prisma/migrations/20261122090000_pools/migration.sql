-- CreateEnum
CREATE TYPE "PoolStatus" AS ENUM ('IN_SYNC', 'PENDING', 'DRIFTED', 'ERROR');

-- CreateTable
CREATE TABLE "pools" (
    "tenant_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "mode" TEXT NOT NULL,
    "pool_size" INTEGER NOT NULL,
    "max_connections" INTEGER NOT NULL,
    "status" "PoolStatus" NOT NULL DEFAULT 'PENDING',
    "last_synced_at" TIMESTAMPTZ(3),
    "last_error" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pools_pkey" PRIMARY KEY ("tenant_id")
);

-- CreateIndex
CREATE INDEX "pools_status_idx" ON "pools"("status");

-- AddForeignKey
ALTER TABLE "pools" ADD CONSTRAINT "pools_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;
