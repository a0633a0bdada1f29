"""Pre-flight of a container before Dagster starts: the env is complete and PostgreSQL answers.

Usage (the image's entrypoint runs it before the webserver, the daemon and the code server):
    python deploy/preflight.py [--wait SECONDS] [--sandbox]
Exit 0 when ready; otherwise ONE line ``error: …`` on stderr and exit 2, e.g. a missing or
placeholder secret, a wrong password, PostgreSQL still down after ``--wait`` seconds (default
``PREFLIGHT_WAIT_S`` or 60), or (``--sandbox``, the code server's role: it runs strategy code)
a sandbox worker without seccomp AND Landlock — the host's fail-closed check, run once at start
so a container runtime that blocks them is named before any run. Prints no secret.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

REQUIRED = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD",
            "DAGSTER_PG_DB", "TRADING_BRAIN_HOME")
PLACEHOLDERS = ("", "change-me", "changeme", "CHANGE_ME")


def check_env(env: dict[str, str]) -> str | None:
    """The first problem with the environment, or None."""
    missing = [k for k in REQUIRED if not env.get(k, "").strip()]
    if missing:
        return f"missing setting(s) {', '.join(missing)}; copy deploy/env.example to deploy/.env"
    if env["DAGSTER_PG_PASSWORD"].strip() in PLACEHOLDERS:
        return "DAGSTER_PG_PASSWORD is still the placeholder; set a real secret in deploy/.env"
    if not env["DAGSTER_PG_PORT"].isdigit():
        return f"DAGSTER_PG_PORT must be a port number, not {env['DAGSTER_PG_PORT']!r}"
    return None


def check_postgres(env: dict[str, str], wait_s: float) -> str | None:
    """None once a connection succeeds; a one-line reason after ``wait_s`` (auth: at once)."""
    import psycopg2

    where = f"{env['DAGSTER_PG_HOST']}:{env['DAGSTER_PG_PORT']}"
    deadline, reason = time.monotonic() + wait_s, "no attempt"
    while True:
        try:
            psycopg2.connect(host=env["DAGSTER_PG_HOST"], port=int(env["DAGSTER_PG_PORT"]),
                             user=env["DAGSTER_PG_USER"], password=env["DAGSTER_PG_PASSWORD"],
                             dbname=env["DAGSTER_PG_DB"], connect_timeout=3).close()
            return None
        except psycopg2.OperationalError as e:
            reason = " ".join(str(e).split())[-200:]
            if "password authentication failed" in reason or "does not exist" in reason:
                return (f"PostgreSQL at {where} refused user {env['DAGSTER_PG_USER']!r} or "
                        f"database {env['DAGSTER_PG_DB']!r}: check DAGSTER_PG_* in deploy/.env")
        if time.monotonic() >= deadline:
            return (f"PostgreSQL at {where} is not reachable after {wait_s:.0f}s ({reason}); "
                    "Dagster's run storage cannot start")
        time.sleep(1.0)


def check_sandbox() -> str | None:
    """Boot the shipped ``ema_cross`` v1 in the sandbox worker; its fail-closed check decides."""
    from pathlib import Path

    from trading_brain.adapters.sandbox.host import SandboxedStrategy
    from trading_brain.errors import TradingBrainError

    src = Path(__file__).resolve().parents[1] / "strategies" / "ema_cross" / "v1.py"
    strategy = SandboxedStrategy(path=src)
    try:
        strategy.layers  # noqa: B018 - boots the worker and checks its layers
    except TradingBrainError as e:
        return " ".join(str(e).split())
    finally:
        strategy.close()
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wait", type=float, default=float(os.environ.get("PREFLIGHT_WAIT_S", 60)))
    ap.add_argument("--sandbox", action="store_true", help="also check the sandbox layers")
    args = ap.parse_args(argv)
    env = dict(os.environ)
    problem = check_env(env) or check_postgres(env, args.wait)
    if problem is None and args.sandbox:
        problem = check_sandbox()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
