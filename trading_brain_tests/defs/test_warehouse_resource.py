"""The warehouse resource: dagster-duckdb's DuckDBResource, with the store's connection policy.

Real DuckDB files in tmp dirs, a real second process holding the lock, real Dagster runs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from trading_brain.adapters.duckdb import Store
from trading_brain.definitions import defs
from trading_brain.defs.resources import TradingBrainResource, WarehouseResource
from trading_brain.errors import WarehouseLocked

from .conftest import NOW, write_home

HOLDER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.readline()
    con.close()
""")


def _hold(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _release(proc: subprocess.Popen) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    proc.wait(10)


class CountingWarehouse(WarehouseResource):
    """Counts the connections the store takes from it."""

    _opened: list[bool] = PrivateAttr(default_factory=list)

    def get_connection(  # noqa: ANN201 - WarehouseResource's context manager
            self, read_only: bool = False, lock_budget_s: float | None = None):
        self._opened.append(read_only)
        return super().get_connection(read_only, lock_budget_s)


def test_the_definitions_bind_a_duckdb_resource_nested_in_tb() -> None:
    res = defs.resources or {}
    warehouse, tb = res["warehouse"], res["tb"]
    assert isinstance(warehouse, DuckDBResource) and isinstance(warehouse, WarehouseResource)
    assert isinstance(tb, TradingBrainResource) and tb.warehouse == warehouse
    assert warehouse.database.endswith("var/warehouse.duckdb")


def test_a_dagster_step_stores_through_the_warehouse_resource(tmp_path: Path) -> None:
    home = write_home(tmp_path / "home")
    counting = CountingWarehouse(database=str(home.warehouse))

    @dg.asset
    def probe(tb: TradingBrainResource) -> None:
        assert isinstance(tb.warehouse, CountingWarehouse)  # Dagster resolved the nested one
        opened = len(tb.warehouse._opened)
        tb.runtime.store.set_meta("probe", "yes")
        assert len(tb.warehouse._opened) > opened

    with dg.instance_for_test() as instance:
        result = dg.materialize([probe], instance=instance, resources={
            "tb": TradingBrainResource(home=str(home.root), now=NOW.isoformat(),
                                       warehouse=counting)})
    assert result.success
    assert Store(home.warehouse).get_meta("probe") == "yes"


def test_the_store_takes_every_connection_from_the_resource(tmp_path: Path) -> None:
    home = write_home(tmp_path / "home")
    counting = CountingWarehouse(database=str(home.warehouse))
    tb = TradingBrainResource(home=str(home.root), now=NOW.isoformat(), warehouse=counting)
    store = tb.runtime.store
    before = len(counting._opened)
    store.set_meta("k", "v")
    assert store.get_meta("k") == "v"
    assert len(counting._opened) == before + 2 and before >= 1  # + the migration's


def test_a_held_lock_gives_up_within_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    proc = _hold(path)
    try:
        with pytest.raises(WarehouseLocked, match="gave up after"):
            with WarehouseResource(database=str(path), lock_budget_s=0.3).get_connection():
                pass
        short = TradingBrainResource(home=str(tmp_path), now=NOW.isoformat(),
                                     warehouse=WarehouseResource(database=str(path),
                                                                 lock_budget_s=0.3))
        with pytest.raises(WarehouseLocked):
            _ = short.runtime  # opening the store migrates: it waits 0.3 s at most
    finally:
        _release(proc)


def test_a_lock_released_in_time_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    proc = _hold(path)
    warehouse = WarehouseResource(database=str(path), lock_budget_s=60)

    got: list[object] = []

    def use() -> None:
        with warehouse.get_connection() as con:
            got.append(con.execute("SELECT 42").fetchall())

    t = threading.Thread(target=use)
    t.start()
    assert not got  # still waiting for the holder
    _release(proc)
    t.join(60)
    assert got == [[(42,)]]


def test_the_connection_is_closed_when_the_block_raises(tmp_path: Path) -> None:
    warehouse = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    seen: list[duckdb.DuckDBPyConnection] = []
    with pytest.raises(RuntimeError, match="boom"):
        with warehouse.get_connection() as con:
            seen.append(con)
            raise RuntimeError("boom")
    with pytest.raises(duckdb.ConnectionException):
        seen[0].execute("SELECT 1")


def test_read_only_and_connection_config(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    warehouse = WarehouseResource(database=str(path), connection_config={"threads": 1})
    with warehouse.get_connection() as con:
        con.execute("CREATE TABLE t (x INT)").fetchall()
        assert con.execute("SELECT current_setting('threads')").fetchone() == (1,)
        assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
    with warehouse.get_connection(read_only=True) as con:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("INSERT INTO t VALUES (1)").fetchall()
