-- gatehouse schema 4: each account's second factors (issue 15): its
-- authenticator app and unused recovery codes, as one record apart from
-- the account's (which every session check reads). Gone with the account.
CREATE TABLE second_factors (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    record TEXT NOT NULL
);
