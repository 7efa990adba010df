-- CreateEnum
CREATE TYPE "OperationFailureCause" AS ENUM ('TENANT', 'STEP');

-- AlterTable
ALTER TABLE "operation_items" ADD COLUMN     "canary" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "failure_cause" "OperationFailureCause";

-- Operations started before: their canaries were the first canary_size positions.
UPDATE "operation_items" i SET "canary" = true FROM "operations" o WHERE o."id" = i."operation_id" AND i."position" < o."canary_size";
