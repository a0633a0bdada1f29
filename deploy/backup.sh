#!/usr/bin/env bash
# Take a warehouse snapshot now (the same as the nightly `warehouse_backup` asset):
# consistent copy, sha256 recorded, retention applied. Prints one JSON object.
#   deploy/backup.sh HOME                        # a systemd/venv install
#   docker compose -f deploy/compose.yaml exec -T code trading-brain backup --json   # compose
# Exit 2 with one `error:` line on failure (e.g. a full disk: earlier snapshots are kept and an
# alert is recorded in the `notifications` table).
set -euo pipefail
home=${1:?usage: backup.sh HOME}
exec "${TRADING_BRAIN:-trading-brain}" --home "$home" backup --json
