-- One sealed key per (user, provider). Times are INTEGER unix microseconds
-- (UTC), which compare correctly; expires_at NULL = never.
-- version counts writes of the current key: 1 when stored over nothing or
-- over an expired row, +1 on every replace and rewrap.
CREATE TABLE IF NOT EXISTS {{.Table}} (
    user_id    TEXT    NOT NULL,
    provider   TEXT    NOT NULL,
    ciphertext BLOB    NOT NULL,
    key_id     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NULL,
    version    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, provider)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {{.ExpiresIndex}} ON {{.Table}} (expires_at);
-- Named values for the whole store, such as the secret's check value.
CREATE TABLE IF NOT EXISTS {{.Meta}} (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
