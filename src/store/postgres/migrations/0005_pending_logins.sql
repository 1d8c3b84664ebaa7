-- gatehouse schema 5: half-logins waiting for their second step (issue
-- 15), under the SHA-256 of the browser's random cookie, for a few
-- minutes. Gone with the account.
CREATE TABLE pending_logins (
    key BYTEA PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX pending_logins_by_expiry ON pending_logins (expires_at);
