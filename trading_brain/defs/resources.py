"""The Dagster resources: a handle on a Trading Brain home, and its DuckDB warehouse.

Contract:
- ``WarehouseResource`` is dagster-duckdb's ``DuckDBResource`` (a subclass, so the Dagster UI
  lists it with its ``database`` and ``connection_config``) whose ``get_connection`` opens our
  way: ``adapters.duckdb.connection.connect`` — the file's lock retried with jittered back-off
  until ``lock_budget_s`` is spent, then ``WarehouseLocked``; any other open failure at once;
  a read-only mode; a UTC session; the connection closed even when the block raises.
  ``DuckDBResource.get_connection`` itself cannot be used as is: it retries every
  ``IOException`` (a corrupt or unreadable file too) ten times for up to ~100 s with no
  deadline and no jitter, has no read-only mode, and does not close the connection when the
  block raises (the file lock then lives as long as the traceback).
- ``TradingBrainResource`` opens the home at ``home`` (``TRADING_BRAIN_HOME`` or the CWD when
  empty); ``now`` (ISO-8601) pins the clock — for tests and replays; empty means the wall
  clock. Its store takes every connection from ``warehouse`` (a nested resource; when unset,
  a ``WarehouseResource`` on ``<home>/var/warehouse.duckdb``), so Dagster steps and the CLI
  share one connection policy. ``definitions.py`` binds both resources (keys ``tb`` and
  ``warehouse``), the same ``WarehouseResource`` nested in ``tb``.
- ``WAREHOUSE_POOL`` is the Dagster pool (one slot) of every step that opens the warehouse.
  A step that spends most of its time with no connection open (the evolution cycle: advisor
  calls, sandbox work, backtests) declares no pool and runs inside
  ``tb.slot_per_connection(context)`` instead: the slot is claimed for the step only while one
  of its warehouse connections is open (``defs.pool_slot.StepPoolSlot``), so the scan's step can
  take it in between.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.duckdb.connection import DEFAULT_LOCK_BUDGET_S, connect
from trading_brain.app.runtime import Runtime, build_runtime
from trading_brain.defs.pool_slot import StepPoolSlot
from trading_brain.settings import HOME_ENV, Home

WAREHOUSE_POOL = "warehouse"  # the Dagster pool (one slot) of every step that opens the warehouse


class WarehouseResource(DuckDBResource):
    """The home's DuckDB warehouse (dagster-duckdb's DuckDBResource; short connections, each
    waiting at most ``lock_budget_s`` for a lock another process holds)."""

    lock_budget_s: float = Field(
        default=DEFAULT_LOCK_BUDGET_S, gt=0,
        description="seconds a connection waits for a lock held by another process")

    @classmethod
    def for_home(cls, home: Home) -> WarehouseResource:
        return cls(database=str(home.warehouse))

    @contextmanager
    def get_connection(self, read_only: bool = False, lock_budget_s: float | None = None
                       ) -> Iterator[duckdb.DuckDBPyConnection]:
        """One short connection (closed on exit), the lock retried within the budget."""
        budget = self.lock_budget_s if lock_budget_s is None else lock_budget_s
        with connect(self.database, read_only=read_only, lock_budget_s=budget,
                     config=self.connection_config) as con:
            yield con


class TradingBrainResource(dg.ConfigurableResource):
    """Opens the home at ``home`` (``TRADING_BRAIN_HOME`` or the CWD when empty).

    ``now`` (ISO-8601) pins the clock — for tests and replays; empty means the wall clock.
    The store's connections come from ``warehouse`` (default: the home's warehouse file).
    """

    home: str = ""
    now: str = ""
    warehouse: WarehouseResource | None = None
    _runtime: Runtime | None = PrivateAttr(default=None)
    _slots: _SlotHolder | None = PrivateAttr(default=None)  # paired with ``_runtime``
    _built_by: int = PrivateAttr(default=0)  # id() of the copy that built ``_runtime``

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            pinned = datetime.fromisoformat(self.now.replace("Z", "+00:00")) if self.now else None
            home = Home(self.home or os.environ.get(HOME_ENV) or None)
            warehouse = self.warehouse or WarehouseResource.for_home(home)
            slots = _SlotHolder(warehouse)
            store = Store.open(warehouse.database, lock_budget_s=warehouse.lock_budget_s,
                               connector=slots.connect)
            self._runtime, self._slots = build_runtime(home, now=pinned, store=store), slots
            self._built_by = id(self)
        return self._runtime

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """At the end of a run, stop the sandbox workers this run's copy started (a runtime
        inherited from another copy is left to its owner)."""
        if self._runtime is not None and self._built_by == id(self):
            self._runtime.workers.close()

    @contextmanager
    def slot_per_connection(self, context: dg.AssetExecutionContext,
                            pool: str = WAREHOUSE_POOL) -> Iterator[StepPoolSlot]:
        """Within the block, each warehouse connection of the runtime's store holds ``pool``'s
        slot for ``context``'s step while it is open (the step itself must declare no pool)."""
        self.runtime  # noqa: B018 -- builds the store (and its slot holder) on first use
        holder = self._slots
        assert holder is not None
        slot = holder.slot = StepPoolSlot.of_step(context, pool)
        try:
            yield slot
        finally:
            holder.slot = None
            slot.release()


class _SlotHolder:
    """The store's connector: ``warehouse``'s connections, under ``slot`` when one is set."""

    def __init__(self, warehouse: WarehouseResource) -> None:
        self.warehouse = warehouse
        self.slot: StepPoolSlot | None = None

    @contextmanager
    def connect(self, *, read_only: bool = False, lock_budget_s: float = DEFAULT_LOCK_BUDGET_S
                ) -> Iterator[duckdb.DuckDBPyConnection]:
        slot = self.slot
        with (slot.held() if slot is not None else nullcontext()), \
                self.warehouse.get_connection(read_only, lock_budget_s) as con:
            yield con


def resources() -> dict[str, dg.ConfigurableResource]:
    """The resources ``definitions.py`` binds: ``tb`` with ``warehouse`` nested in it."""
    warehouse = WarehouseResource.for_home(Home(os.environ.get(HOME_ENV) or None))
    return {"tb": TradingBrainResource(warehouse=warehouse), "warehouse": warehouse}
