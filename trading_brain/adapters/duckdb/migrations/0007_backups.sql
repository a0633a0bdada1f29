-- 0007: warehouse snapshots taken by `warehouse_backup` / `trading-brain backup`, and an id that
-- names this warehouse (a restore refuses a snapshot of another home's warehouse).
CREATE TABLE IF NOT EXISTS backups (
    file_name VARCHAR PRIMARY KEY,        -- warehouse-YYYYMMDDTHHMMSSZ.duckdb
    ts TIMESTAMPTZ NOT NULL,              -- when the snapshot was taken
    path VARCHAR NOT NULL,                -- absolute path when it was written
    bytes BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL,              -- of the snapshot file (also in <file>.sha256 beside it)
    schema_version INTEGER NOT NULL,      -- newest migration in the snapshot
    removed_at TIMESTAMPTZ                -- set when retention deleted the file
);
INSERT INTO system_meta (key, value, updated_at)
    SELECT 'warehouse_id', CAST(uuid() AS VARCHAR), now()
    WHERE NOT EXISTS (SELECT 1 FROM system_meta WHERE key = 'warehouse_id');
