-- Applied migrations; created before any migration runs.
CREATE TABLE IF NOT EXISTS {{.Schema}} (
    version    INTEGER     PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
