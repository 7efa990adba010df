-- CreateEnum
CREATE TYPE "OperationKind" AS ENUM ('UPGRADE_SCHEMAS', 'UPDATE_EXTENSIONS');

-- CreateEnum
CREATE TYPE "OperationStatus" AS ENUM ('PENDING', 'RUNNING', 'SUCCEEDED', 'COMPLETED_WITH_ERRORS', 'FAILED');

-- CreateEnum
CREATE TYPE "OperationItemStatus" AS ENUM ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED');

-- CreateTable
CREATE TABLE "tenant_extensions" (
    "tenant_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "recorded_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tenant_extensions_pkey" PRIMARY KEY ("tenant_id","name")
);

-- CreateTable
CREATE TABLE "tenant_inventory" (
    "tenant_id" UUID NOT NULL,
    "checked_at" TIMESTAMPTZ(3) NOT NULL,
    "database_present" BOOLEAN NOT NULL,
    "missing_tables" JSONB NOT NULL,
    "drift" JSONB NOT NULL,
    "error" TEXT,

    CONSTRAINT "tenant_inventory_pkey" PRIMARY KEY ("tenant_id")
);

-- CreateTable
CREATE TABLE "operations" (
    "id" UUID NOT NULL,
    "kind" "OperationKind" NOT NULL,
    "status" "OperationStatus" NOT NULL DEFAULT 'PENDING',
    "params" JSONB NOT NULL,
    "total" INTEGER NOT NULL,
    "done" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,
    "canary_size" INTEGER NOT NULL,
    "concurrency" INTEGER NOT NULL,
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "error" TEXT,

    CONSTRAINT "operations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "operation_items" (
    "operation_id" UUID NOT NULL,
    "tenant_id" UUID NOT NULL,
    "tenant_slug" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "status" "OperationItemStatus" NOT NULL DEFAULT 'PENDING',
    "message" TEXT,
    "from_version" TEXT,
    "to_version" TEXT,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "operation_items_pkey" PRIMARY KEY ("operation_id","tenant_id")
);

-- CreateIndex
CREATE INDEX "operations_status_idx" ON "operations"("status");

-- CreateIndex
CREATE INDEX "operation_items_operation_id_position_idx" ON "operation_items"("operation_id", "position");

-- AddForeignKey
ALTER TABLE "tenant_extensions" ADD CONSTRAINT "tenant_extensions_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "tenant_inventory" ADD CONSTRAINT "tenant_inventory_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "operation_items" ADD CONSTRAINT "operation_items_operation_id_fkey" FOREIGN KEY ("operation_id") REFERENCES "operations"("id") ON DELETE CASCADE ON UPDATE CASCADE;
