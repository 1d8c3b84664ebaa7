-- gatehouse schema 3: the OpenID Connect provider (SPEC §11). Apps
-- (clients), the signing keys, what each user allowed each app (grants),
-- and codes and tokens under the SHA-256 of their secrets. A user's or a
-- client's grants and tokens go with it (ON DELETE CASCADE).
CREATE TABLE oidc_clients (
    id TEXT PRIMARY KEY,
    -- The name, trimmed and lower-cased: unique.
    name_key TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);

CREATE TABLE oidc_keys (
    kid TEXT PRIMARY KEY,
    record TEXT NOT NULL
);

CREATE TABLE oidc_grants (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    record TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE oidc_tokens (
    hash BYTEA PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    -- Every token descending from one code: a reuse ends them all.
    family BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX oidc_tokens_by_user ON oidc_tokens (user_id);
CREATE INDEX oidc_tokens_by_family ON oidc_tokens (family);
CREATE INDEX oidc_tokens_by_expiry ON oidc_tokens (expires_at);
