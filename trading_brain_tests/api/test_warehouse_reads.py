"""``ReadOnlyWarehouse`` (read-only opens, the TTL cache, single flight, stale answers while
one caller refreshes) and the listing SQL, on a real DuckDB file."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.http_api import warehouse as wmod
from trading_brain.adapters.http_api.queries import LISTINGS, Page, page_statement
from trading_brain.adapters.http_api.warehouse import ReadOnlyWarehouse, json_value

SQL = "SELECT count(*) AS n FROM fills"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "warehouse.duckdb"
    Store.open(p)
    return p


def test_every_open_is_read_only(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    real = wmod.connect

    def spy(*args: Any, **kwargs: Any):  # noqa: ANN202 - the real context manager
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(wmod, "connect", spy)
    wh = ReadOnlyWarehouse(path, cache_ttl_s=0, lock_budget_s=0.5)
    assert wh.rows(SQL) == [{"n": 0}]
    wh.batch([(SQL, ()), ("SELECT 1 AS one", ())], cached=False)
    assert [k["read_only"] for k in seen] == [True, True]
    assert all(k["lock_budget_s"] == 0.5 for k in seen)


def test_identical_reads_share_one_open_within_the_ttl(path: Path) -> None:
    clock = Clock()
    wh = ReadOnlyWarehouse(path, cache_ttl_s=1.0, monotonic=clock)
    assert wh.rows(SQL) == wh.rows(SQL) == [{"n": 0}]
    assert wh.opened == 1
    wh.rows(SQL + " WHERE side = ?", ["buy"])  # other parameters: another read
    assert wh.opened == 2
    clock.t += 1.0
    wh.rows(SQL)
    assert wh.opened == 3
    wh.rows(SQL, cached=False)
    assert wh.opened == 4


def _slow_reader(wh: ReadOnlyWarehouse, answer: list[list[dict[str, object]]]
                 ) -> tuple[threading.Event, threading.Event]:
    entered, release = threading.Event(), threading.Event()

    def read(_statements: object) -> list[list[dict[str, object]]]:
        entered.set()
        release.wait(10)
        wh.opened += 1
        return answer

    wh._read = read  # type: ignore[method-assign]
    return entered, release


def test_while_one_caller_refreshes_the_others_get_the_previous_answer(path: Path) -> None:
    clock = Clock()
    wh = ReadOnlyWarehouse(path, cache_ttl_s=1.0, lock_budget_s=2.0, monotonic=clock)
    assert wh.rows(SQL) == [{"n": 0}]
    entered, release = _slow_reader(wh, [[{"n": 5}]])
    clock.t += 1.5  # expired, but younger than ttl + budget
    got: list[object] = []
    refresher = threading.Thread(target=lambda: got.append(wh.rows(SQL)))
    refresher.start()
    assert entered.wait(10)
    assert wh.rows(SQL) == [{"n": 0}]  # the previous answer, at once
    clock.t += 2.0  # now older than ttl + budget: this caller would wait for the refresh
    release.set()
    refresher.join()
    assert got == [[{"n": 5}]] and wh.rows(SQL) == [{"n": 5}]


def test_without_a_previous_answer_concurrent_callers_wait_for_one_read(path: Path) -> None:
    wh = ReadOnlyWarehouse(path, cache_ttl_s=1.0, monotonic=Clock())
    entered, release = _slow_reader(wh, [[{"n": 7}]])
    got: list[object] = []
    first = threading.Thread(target=lambda: got.append(wh.rows(SQL)))
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=lambda: got.append(wh.rows(SQL)))
    second.start()
    release.set()
    first.join()
    second.join()
    assert got == [[{"n": 7}], [{"n": 7}]] and wh.opened == 1


def test_values_come_back_json_ready() -> None:
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert json_value(t) == "2026-01-02T01:04:05Z"
    assert json_value(Decimal("1.50")) == 1.5
    assert json_value(math.nan) is None and json_value(math.inf) is None
    assert json_value('{"a": [1]}', "JSON") == {"a": [1]}
    assert json_value('{"a": [1]}', "VARCHAR") == '{"a": [1]}'


def test_page_statement_binds_every_value(path: Path) -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    sql, params = page_statement(LISTINGS["positions"], {"symbol": "BTC/USD'; DROP",
                                                         "slot": None}, since, None,
                                 Page(limit=10, offset=20, order="asc"))
    assert "DROP" not in sql and "slot" not in sql.split("WHERE")[1]
    assert params == ["BTC/USD'; DROP", since, 11, 20]
    assert "ORDER BY entry_time ASC" in sql
    wh = ReadOnlyWarehouse(path, cache_ttl_s=0)
    for name, listing in LISTINGS.items():  # every listing's SQL runs on the real schema
        sql, params = page_statement(listing, dict.fromkeys(listing.filters, "x"), since,
                                     since + timedelta(days=1), Page())
        assert wh.rows(sql, params) == [], name
