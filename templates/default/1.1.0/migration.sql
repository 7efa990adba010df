-- Tenant schema 1.1.0: soft deletes. Backward compatible: a nullable column (no rewrite
-- of existing rows) and a partial index that stays empty until rows are deleted.
ALTER TABLE documents ADD COLUMN deleted_at TIMESTAMPTZ;
CREATE INDEX idx_documents_deleted_at ON documents (deleted_at) WHERE deleted_at IS NOT NULL;
