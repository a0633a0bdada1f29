#!/bin/sh
# The image's one entrypoint (under tini). ROLE: code | webserver | daemon | init | cli ARGS…
# Dagster roles run deploy/preflight.py first (one-line error and exit 2 on a bad env or a
# PostgreSQL that stays down), and all share DAGSTER_HOME (the Postgres instance config).
set -eu
APP=/opt/trading-brain
# DAGSTER_HOME lives on the home volume (the root filesystem is read-only); its dagster.yaml is
# always the image's Postgres instance config.
mkdir -p "$DAGSTER_HOME"
cp "$APP/deploy/dagster.postgres.yaml" "$DAGSTER_HOME/dagster.yaml"
WS="$APP/deploy/workspace.yaml"
role=${1:-webserver}
[ $# -gt 0 ] && shift
case "$role" in
  code)
    trading-brain init --if-needed
    python "$APP/deploy/preflight.py" --sandbox
    # Hold the home's `up` lock (var/up.lock, as `trading-brain up` does) for the code server's
    # life: runs write the warehouse here, and `trading-brain restore` refuses while it is held.
    lock="$TRADING_BRAIN_HOME/var/up.lock"
    exec 9>>"$lock"
    if ! flock -n 9; then
      echo "error: $lock is held: another code server or \`trading-brain up\` runs for this home" >&2
      exit 2
    fi
    printf '{"pid": %s, "url": "grpc://code:4000", "started": "%s"}\n' "$$" \
      "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$lock"
    exec dagster code-server start -h 0.0.0.0 -p 4000 -m trading_brain.definitions \
      --location-name trading_brain "$@" ;;
  webserver)
    python "$APP/deploy/preflight.py"
    exec dagster-webserver -h 0.0.0.0 -p 3000 -w "$WS" "$@" ;;
  daemon)
    python "$APP/deploy/preflight.py"
    exec dagster-daemon run -w "$WS" "$@" ;;
  init)
    exec trading-brain init --if-needed "$@" ;;
  cli)
    exec trading-brain "$@" ;;
  *)
    echo "error: unknown role '$role' (code | webserver | daemon | init | cli ARGS...)" >&2
    exit 2 ;;
esac
