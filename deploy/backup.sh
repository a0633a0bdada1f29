#!/usr/bin/env bash
# Consistent copy of a home's warehouse: DuckDB's EXPORT DATABASE through a short read-only
# connection (retries while a scan holds the lock). Usage: deploy/backup.sh HOME DEST_DIR
set -euo pipefail
home=${1:?usage: backup.sh HOME DEST_DIR}; dest=${2:?usage: backup.sh HOME DEST_DIR}
py=${PYTHON:-python3}
"$py" - "$home/var/warehouse.duckdb" "$dest/warehouse-$(date -u +%Y%m%dT%H%M%SZ)" <<'PY'
import sys, time, duckdb
src, out = sys.argv[1], sys.argv[2]
for attempt in range(60):
    try:
        con = duckdb.connect(src, read_only=True)
        break
    except duckdb.IOException:
        time.sleep(1)
else:
    sys.exit("warehouse stayed locked for 60 s; try again")
try:
    con.execute(f"EXPORT DATABASE '{out}' (FORMAT parquet)").fetchall()
finally:
    con.close()
print(out)
PY
