"""A small initialised sim home at a pinned time, shared by the Dagster tests."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from trading_brain.defs.resources import TradingBrainResource
from trading_brain.settings import Home

NOW = datetime(2026, 11, 20, 10, 2, 30, tzinfo=UTC)
SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]


def write_home(root, market="sim", extra="") -> Home:
    home = Home(root)
    home.root.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(
        f'market = "{market}"\nsymbols = {SYMBOLS!r}\n'.replace("'", '"')
        + "[history]\ndays_5m = 2\ndays_1h = 5\ndays_1d = 20\n" + extra)
    return home


@pytest.fixture
def sim_home(tmp_path) -> Home:
    return write_home(tmp_path / "home")


def resource(home: Home, now: datetime = NOW) -> TradingBrainResource:
    return TradingBrainResource(home=str(home.root), now=now.isoformat())


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst
