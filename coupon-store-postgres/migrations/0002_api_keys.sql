-- API keys of the HTTP service: only the SHA-256 of each secret is kept. Keys are revoked,
-- never deleted.

CREATE TABLE api_keys (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT,
    role       TEXT        NOT NULL CHECK (role IN ('admin', 'client')),
    key_hash   TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
