-- Tenant schema 1.0.0: the tenant tables of TansuCloud's document service.
-- Applied once to the template database; tenants are copied from it.
-- "__SchemaVersion" is created and written by Tenantry's migration runner.

CREATE TABLE collections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    schema JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_collections_created ON collections (created_at DESC);

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    content JSONB NOT NULL,
    metadata JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    etag TEXT NOT NULL,
    row_version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX idx_documents_collection ON documents (collection_id);
CREATE INDEX idx_documents_created ON documents (created_at DESC);
CREATE INDEX idx_documents_updated ON documents (updated_at DESC);
CREATE INDEX idx_documents_content_gin ON documents USING GIN (content);

-- Semantic search needs pgvector, an optional extension of this template: the table
-- exists only where the server offers it (the runner installs it first when it can).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        EXECUTE $sql$
            CREATE TABLE vector_embeddings (
                id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
                document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
                collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
                embedding vector(1536) NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
        $sql$;
        EXECUTE 'CREATE INDEX idx_vector_embeddings_document ON vector_embeddings (document_id)';
        EXECUTE 'CREATE INDEX idx_vector_embeddings_collection ON vector_embeddings (collection_id)';
        EXECUTE 'CREATE INDEX idx_vector_embeddings_hnsw ON vector_embeddings USING hnsw (embedding vector_cosine_ops)';
    END IF;
END
$$;
