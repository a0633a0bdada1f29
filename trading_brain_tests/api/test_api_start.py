"""`trading-brain api` refuses to start without a token, a home or a free port: one line
`error: …`, exit 2, nothing served."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from trading_brain.app.api import TOKEN_ENV, api_token
from trading_brain.errors import ConfigError
from trading_brain_tests.api.conftest import TOKEN, free_port, run_cli


def _env(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    if token is not None:
        env[TOKEN_ENV] = token
    return env


def _one_error_line(stderr: str, *words: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert all(w in lines[0] for w in words), lines[0]


@pytest.mark.parametrize("token", [None, "   "])
def test_missing_or_blank_token_refuses_to_start(sim_home: Path, token: str | None) -> None:
    done = run_cli(sim_home, "api", "--port", str(free_port()), env=_env(token), timeout=60)
    assert done.returncode == 2
    _one_error_line(done.stderr, TOKEN_ENV, "refuses to start")


def test_token_is_stripped_and_required() -> None:
    assert api_token({TOKEN_ENV: f"  {TOKEN}\n"}) == TOKEN
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        api_token({})


def test_a_home_that_is_not_initialised_is_refused(tmp_path: Path) -> None:
    done = run_cli(tmp_path / "nothing", "api", "--port", str(free_port()), env=_env(TOKEN),
                   timeout=60)
    assert done.returncode == 2
    _one_error_line(done.stderr, "not a Trading Brain home")


def test_a_port_in_use_is_refused(sim_home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli(sim_home, "api", "--port", str(port), env=_env(TOKEN), timeout=60)
    assert done.returncode == 2
    _one_error_line(done.stderr, f"127.0.0.1:{port}")


def test_bad_options_are_one_line(sim_home: Path) -> None:
    done = run_cli(sim_home, "api", "--port", "0", env=_env(TOKEN), timeout=60)
    assert done.returncode == 2 and "--port" in done.stderr


def test_an_older_warehouse_is_migrated_before_serving(sim_home: Path, tmp_path: Path) -> None:
    """Code upgraded, `api` started before `up`: the pending migration is applied at start."""
    import shutil

    from trading_brain.adapters.duckdb import Store
    from trading_brain.adapters.duckdb.migrations import available
    from trading_brain.app.api import ApiOptions, build_app
    from trading_brain.settings import Home

    home = tmp_path / "home"
    shutil.copytree(sim_home, home, ignore=shutil.ignore_patterns("*.wal", "dagster"))
    latest = available()[-1][0]
    old = Store(home / "var" / "warehouse.duckdb")
    old.execute("DROP TABLE notification_messages")
    old.execute("DELETE FROM schema_migrations WHERE version = ?", [latest])
    build_app(Home(home), TOKEN, ApiOptions())
    assert old.schema_version() == latest
    assert old.execute("SELECT count(*) FROM notification_messages")[0][0] == 0
