#!/usr/bin/env bash
# System and tool dependencies of the test suite, installed by `make test` itself (idempotent):
# - PostgreSQL server binaries (Debian's `postgresql`) for the Postgres-backed Dagster instance test
#   (the test starts its own throwaway server on 127.0.0.1); installed when missing and we are root
#   with apt-get, otherwise the test skips locally (and fails under CI=true);
# - ansible-core + ansible-lint in `.venv-tools` (kept out of the project's dependencies: ~130 MB)
#   for the playbook syntax/lint test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing postgresql (Debian package) for the Postgres instance test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  else
    echo "deps: PostgreSQL server not installed and cannot install it here; its test will skip"
  fi
fi

TOOLS=.venv-tools
STAMP=$TOOLS/.installed-ansible-2.19.15-26.11.0
if [ ! -f "$STAMP" ]; then
  echo "deps: installing ansible-core and ansible-lint into $TOOLS"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check ansible-core==2.19.15 ansible-lint==26.11.0
  touch "$STAMP"
fi
