-- CreateTable
CREATE TABLE "cluster_usage_minutes" (
    "cluster_id" UUID NOT NULL,
    "minute" TIMESTAMPTZ(0) NOT NULL,
    "sessions" INTEGER NOT NULL,
    "tenant_sessions" INTEGER NOT NULL,
    "allocated_connections" INTEGER NOT NULL,

    CONSTRAINT "cluster_usage_minutes_pkey" PRIMARY KEY ("cluster_id","minute")
);

-- AddForeignKey
ALTER TABLE "cluster_usage_minutes" ADD CONSTRAINT "cluster_usage_minutes_cluster_id_fkey" FOREIGN KEY ("cluster_id") REFERENCES "clusters"("id") ON DELETE CASCADE ON UPDATE CASCADE;
