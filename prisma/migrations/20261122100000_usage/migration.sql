-- CreateTable
CREATE TABLE "tenant_usage" (
    "tenant_id" UUID NOT NULL,
    "current" INTEGER NOT NULL,
    "max_connections" INTEGER NOT NULL,
    "usage_percent" DOUBLE PRECISION NOT NULL,
    "by_state" JSONB NOT NULL,
    "sampled_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "tenant_usage_pkey" PRIMARY KEY ("tenant_id")
);

-- CreateTable
CREATE TABLE "usage_minutes" (
    "tenant_id" UUID NOT NULL,
    "minute" TIMESTAMPTZ(0) NOT NULL,
    "peak_connections" INTEGER NOT NULL,
    "max_connections" INTEGER NOT NULL,

    CONSTRAINT "usage_minutes_pkey" PRIMARY KEY ("tenant_id","minute")
);

-- CreateIndex
CREATE INDEX "tenant_usage_usage_percent_idx" ON "tenant_usage"("usage_percent");

-- CreateIndex
CREATE INDEX "usage_minutes_minute_idx" ON "usage_minutes"("minute");

-- AddForeignKey
ALTER TABLE "tenant_usage" ADD CONSTRAINT "tenant_usage_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "usage_minutes" ADD CONSTRAINT "usage_minutes_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;
