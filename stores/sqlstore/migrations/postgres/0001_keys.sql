-- One sealed key per (user, provider). Times are UTC; expires_at NULL = never.
-- version counts writes of the current key: 1 when stored over nothing or
-- over an expired row, +1 on every replace and rewrap.
CREATE TABLE IF NOT EXISTS {{.Table}} (
    user_id    TEXT        NOT NULL,
    provider   TEXT        NOT NULL,
    ciphertext BYTEA       NOT NULL,
    key_id     BIGINT      NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NULL,
    version    BIGINT      NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, provider)
);
CREATE INDEX IF NOT EXISTS {{.ExpiresIndex}} ON {{.Table}} (expires_at);
-- Named values for the whole store, such as the secret's check value.
CREATE TABLE IF NOT EXISTS {{.Meta}} (
    name  TEXT  PRIMARY KEY,
    value BYTEA NOT NULL
);
