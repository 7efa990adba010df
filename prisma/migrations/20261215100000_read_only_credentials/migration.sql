-- CreateTable
CREATE TABLE "read_only_credentials" (
    "id" UUID NOT NULL,
    "tenant_id" UUID NOT NULL,
    "name" TEXT,
    "role_name" TEXT NOT NULL,
    "max_connections" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "read_only_credentials_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "read_only_credentials_role_name_key" ON "read_only_credentials"("role_name");

-- CreateIndex
CREATE INDEX "read_only_credentials_tenant_id_created_at_idx" ON "read_only_credentials"("tenant_id", "created_at");

-- AddForeignKey
ALTER TABLE "read_only_credentials" ADD CONSTRAINT "read_only_credentials_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;
