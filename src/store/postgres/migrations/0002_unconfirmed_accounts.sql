-- gatehouse schema 2: the accounts still waiting for their address to be
-- confirmed are found through an index, not by reading every record (the
-- hourly expiry of unconfirmed sign-ups read all of them: with 1,000,000
-- accounts a quarter of a second and 250 MiB at every start and hour).
-- The column holds the account's created_at while its status is
-- pending_verification, and is NULL otherwise.
ALTER TABLE users ADD COLUMN unconfirmed_since BIGINT;
UPDATE users
    SET unconfirmed_since = CAST(CAST(record AS JSONB) ->> 'created_at' AS BIGINT)
    WHERE CAST(record AS JSONB) ->> 'status' = 'pending_verification';
CREATE INDEX users_unconfirmed ON users (unconfirmed_since)
    WHERE unconfirmed_since IS NOT NULL;
