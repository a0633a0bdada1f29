#!/bin/sh
# HEALTHCHECK of the one image, by role (TB_ROLE, set per service in compose.yaml).
set -eu
case "${TB_ROLE:-webserver}" in
  code) exec dagster api grpc-health-check -p 4000 ;;
  daemon) exec dagster-daemon liveness-check ;;
  webserver) exec python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:3000/server_info', timeout=5)" ;;
  *) exit 0 ;;
esac
