-- CreateTable
CREATE TABLE "pooler_credentials" (
    "role_name" TEXT NOT NULL,
    "password" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pooler_credentials_pkey" PRIMARY KEY ("role_name")
);
