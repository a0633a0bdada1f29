-- 0005: alerts sent by the alert_sensor (each check failure, run failure, stale asset once).
CREATE TABLE IF NOT EXISTS notifications (
    notification_id VARCHAR PRIMARY KEY,  -- deterministic from what it reports (dedup key)
    ts TIMESTAMPTZ NOT NULL,
    level VARCHAR NOT NULL,               -- ERROR | WARN | INFO
    kind VARCHAR NOT NULL,                -- check_failure | run_failure | stale_asset
    subject VARCHAR NOT NULL,             -- check key, job name or asset key
    text VARCHAR NOT NULL,
    channels VARCHAR NOT NULL             -- where it was sent, e.g. "log"
);
