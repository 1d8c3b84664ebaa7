-- gatehouse schema 5: half-logins waiting for their second step and
-- passkey challenges waiting for their answer (issue 15), under the
-- SHA-256 of a random value the browser holds, for a few minutes. Gone
-- with the account (a passkey login has none yet).
CREATE TABLE pending_logins (
    key BYTEA PRIMARY KEY,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX pending_logins_by_expiry ON pending_logins (expires_at);
