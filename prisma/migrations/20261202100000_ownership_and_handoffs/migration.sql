-- AlterEnum
ALTER TYPE "OperationKind" ADD VALUE 'SECURE_TENANTS';

-- CreateEnum
CREATE TYPE "CredentialPurpose" AS ENUM ('PROVISION', 'ROTATE');

-- AlterTable
ALTER TABLE "tenants" ADD COLUMN     "secured_at" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "credential_handoffs" (
    "id" UUID NOT NULL,
    "tenant_id" UUID NOT NULL,
    "purpose" "CredentialPurpose" NOT NULL,
    "key_hash" CHAR(64) NOT NULL,
    "verifier" TEXT,
    "salt" BYTEA NOT NULL,
    "iv" BYTEA NOT NULL,
    "ciphertext" BYTEA NOT NULL,
    "auth_tag" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "applied_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "credential_handoffs_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "credential_handoffs_applied_at_idx" ON "credential_handoffs"("applied_at");

-- CreateIndex
CREATE INDEX "credential_handoffs_expires_at_idx" ON "credential_handoffs"("expires_at");

-- CreateIndex
CREATE UNIQUE INDEX "credential_handoffs_tenant_id_key_hash_key" ON "credential_handoffs"("tenant_id", "key_hash");

-- AddForeignKey
ALTER TABLE "credential_handoffs" ADD CONSTRAINT "credential_handoffs_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;
