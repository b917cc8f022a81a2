-- Applied migrations; created before any migration runs.
CREATE TABLE IF NOT EXISTS {{.Schema}} (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);
