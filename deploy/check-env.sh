#!/bin/sh
# Check deploy/.env before `docker compose up` (the deploy playbook runs it too).
# Usage: deploy/check-env.sh [ENV_FILE]   (default: deploy/.env beside this script)
# Exit 0 and "ok: …" when usable; else ONE line "error: …" on stderr and exit 2.
# Prints no secret value.
set -u
f=${1:-$(dirname "$0")/.env}
die() { echo "error: $f: $*" >&2; exit 2; }
[ -f "$f" ] || die "no such env file (copy deploy/env.example to deploy/.env and fill it in)"
mode=$(stat -c %a "$f")
case "$mode" in *00) ;; *) die "mode $mode lets others read the secrets; run: chmod 600 $f" ;; esac
# value KEY: the last assignment of KEY, surrounding quotes removed
value() {
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$f" | tail -n 1 \
    | sed "s/^'\(.*\)'\$/\1/; s/^\"\(.*\)\"\$/\1/"
}
bad=$(grep -v -E '^[[:space:]]*(#|$)|^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*=' "$f" | head -n 1)
[ -z "$bad" ] || die "not KEY=VALUE: line '$(echo "$bad" | cut -c1-40)'"
for k in DAGSTER_PG_USER DAGSTER_PG_DB DAGSTER_PG_PASSWORD TB_AUTH_USER TB_AUTH_HASH; do
  v=$(value "$k")
  [ -n "$v" ] || die "$k is missing or empty"
  case "$v" in change-me|changeme|CHANGE_ME) die "$k is still the placeholder 'change-me'" ;; esac
done
pw=$(value DAGSTER_PG_PASSWORD)
[ ${#pw} -ge 16 ] || die "DAGSTER_PG_PASSWORD is shorter than 16 characters"
hash=$(value TB_AUTH_HASH)
echo "$hash" | grep -q -E '^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$' \
  || die "TB_AUTH_HASH is not a bcrypt hash (\$2a\$…, 60 characters, in single quotes)"
dom=$(value TB_DOMAIN)
if [ -n "$dom" ]; then
  echo "$dom" | grep -q -E '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$' \
    || die "TB_DOMAIN '$dom' is not a domain name (leave it empty for plain HTTP on 127.0.0.1)"
fi
k=$(value KRAKEN_API_KEY); s=$(value KRAKEN_API_SECRET)
if [ -n "$k" ] && [ -z "$s" ]; then die "KRAKEN_API_KEY is set but KRAKEN_API_SECRET is empty"; fi
if [ -z "$k" ] && [ -n "$s" ]; then die "KRAKEN_API_SECRET is set but KRAKEN_API_KEY is empty"; fi
if [ -n "$s" ] && ! echo "$s" | grep -q -E '^[A-Za-z0-9+/]+={0,2}$'; then
  die "KRAKEN_API_SECRET is not base64 (copy it from Kraken exactly)"
fi
echo "ok: $f"
