-- gatehouse schema 1. Portable SQL only (docs/scaling.md lists what a
-- PostgreSQL-compatible engine must support). Times are milliseconds
-- since the Unix epoch (BIGINT); records are the JSON the embedded store
-- keeps too (TEXT), with the columns queries need beside them, written
-- from the same value in the same statement.

CREATE TABLE gatehouse_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Numbers are never handed out twice, even after a delete (an account's
-- id is its OpenID `sub`).
CREATE SEQUENCE gatehouse_user_ids START WITH 1;
CREATE SEQUENCE gatehouse_invite_ids START WITH 1;
CREATE SEQUENCE gatehouse_mail_ids START WITH 1;
CREATE SEQUENCE gatehouse_login_seq START WITH 1;
CREATE SEQUENCE gatehouse_audit_seq START WITH 1;

CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    -- Normalised email and lower-cased username: each unique.
    email TEXT NOT NULL,
    username_key TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    record TEXT NOT NULL,
    CONSTRAINT users_email_unique UNIQUE (email),
    CONSTRAINT users_username_unique UNIQUE (username_key)
);

CREATE TABLE sessions (
    -- The SHA-256 of the session token, never the token.
    key BYTEA PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE logins (
    seq BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX logins_by_user ON logins (user_id, seq);

CREATE TABLE lockouts (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL
);

CREATE TABLE invites (
    id BIGINT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    first_run BOOLEAN NOT NULL,
    record TEXT NOT NULL
);

CREATE TABLE outbox (
    id BIGINT PRIMARY KEY,
    -- NULL: given up.
    next_attempt_at BIGINT,
    -- A replica sending it holds it until then (its lease).
    claimed_until BIGINT,
    record TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at);

CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    user_id BIGINT,
    record TEXT NOT NULL
);
CREATE INDEX audit_by_user ON audit (user_id, seq);

CREATE TABLE user_groups (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL
);

-- Who is in a group; the account's record keeps the same (read with
-- every session check), changed in the same transaction.
CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES user_groups (name) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE tokens (
    hash BYTEA PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose SMALLINT NOT NULL,
    expires_at BIGINT NOT NULL,
    record TEXT NOT NULL,
    CONSTRAINT tokens_one_per_purpose UNIQUE (user_id, purpose)
);
