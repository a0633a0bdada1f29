-- 0010: the outbox of the remote notification channels (adapters/duckdb/notify_tables.py).
-- Homes from before this migration created the same tables at runtime, hence IF NOT EXISTS:
-- their rows are kept and the migration only records the version.

-- A row per (notification, channel) once a delivery tried it; no row: pending on that channel.
CREATE TABLE IF NOT EXISTS notification_deliveries (
    notification_id VARCHAR NOT NULL,   -- notifications.notification_id
    channel VARCHAR NOT NULL,           -- telegram | webhook
    status VARCHAR NOT NULL,            -- pending | sent | failed (given up)
    attempts INTEGER NOT NULL,          -- failed sends so far
    next_attempt_at TIMESTAMPTZ,        -- not retried before (backoff, Retry-After)
    sent_at TIMESTAMPTZ,
    digest BOOLEAN NOT NULL DEFAULT false,  -- went out inside a digest
    last_error VARCHAR,
    PRIMARY KEY (notification_id, channel)
);

-- One row per message a channel accepted (the rate-limit window).
CREATE TABLE IF NOT EXISTS notification_messages (
    channel VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,            -- when the channel accepted it
    notifications INTEGER NOT NULL      -- alerts it carried (> 1: a digest)
);
