"""The home's Dagster catalog: what was written outside Dagster runs, told to its instance.

``init``, ``bootstrap`` and strategy registration write the warehouse without a Dagster run, so
the UI would show the candle assets "0% filled" and ``strategy_versions`` "Never materialized",
and ``backtest_job`` would know no partition. ``DagsterCatalog`` records them as what they are:
- ``candle_days(timeframe, rows_by_day)``: one runless ``AssetMaterialization`` of
  ``candles_<tf>`` per day partition holding candles (metadata: rows, source), skipping the days
  the instance already shows materialized — re-running is cheap and adds nothing. Days before
  ``MARKET_START`` (outside the partitions definition) are left out;
- ``versions_registered(keys, registered_now)``: adds the missing ``strategy_version`` dynamic
  partitions (what ``dagster job backfill -j backtest_job --partitions ...`` needs) and, when
  something was registered, one runless ``strategy_versions`` materialization.
Cost: ``report_runless_asset_event`` is two SQLite transactions and four engines per event
(~10 ms idle, far more on a busy disk; Dagster's ``store_event_batch`` is a loop on SQLite), so
candle days are written in batches: on the SQLite event log, ``_sqlite_batch`` stores a batch
exactly as ``SqliteEventLogStorage.store_event`` stores one event (run shard, then the index
shard with the asset tables) but in one transaction per shard — it uses that storage's
internals, pinned with dagster==1.13.27 and tested against the public path; any other storage
(Postgres) gets the public call per event.
``DagsterCatalog.open(dagster_home)`` opens the instance of ``var/dagster`` (the one
``trading-brain up`` serves) and disposes it; storage failures become ``TemporaryError``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from trading_brain.errors import TemporaryError

if TYPE_CHECKING:
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

STRATEGY_VERSION_PARTITIONS = "strategy_version"  # the backtests' dynamic partitions
MARKET_START = "2017-01-01"  # first day partition of the market assets
CANDLE_ASSETS = {"5m": "candles_5m", "1h": "candles_1h", "1d": "candles_1d"}
_STORAGE_ERRORS = (dg.DagsterError, sqlite3.Error, SQLAlchemyError, OSError)
BATCH = 500  # events per transaction


def version_key(strategy_id: str, version: int) -> str:
    """The partition key of a strategy version: ``<strategy_id>@<version>``."""
    return f"{strategy_id}@{version}"


class DagsterCatalog:
    """Runless asset events and dynamic partitions on one Dagster instance."""

    def __init__(self, instance: dg.DagsterInstance, source: str = "outside Dagster") -> None:
        self.instance = instance
        self.source = source

    @classmethod
    @contextmanager
    def open(cls, dagster_home: Path, source: str) -> Iterator[DagsterCatalog]:
        """The instance configured in ``dagster_home`` (its dagster.yaml), disposed on exit."""
        try:
            instance = dg.DagsterInstance.from_config(str(dagster_home))
        except _STORAGE_ERRORS as e:
            raise TemporaryError(f"Dagster instance at {dagster_home} unavailable: {e}") from e
        try:
            yield cls(instance, source)
        finally:
            instance.dispose()

    def candle_days(self, timeframe: str, rows_by_day: Mapping[str, int]) -> int:
        """Materialize each day partition of ``candles_<timeframe>`` not yet materialized;
        returns how many events were reported."""
        key = dg.AssetKey(CANDLE_ASSETS[timeframe])
        try:
            done = set(self.instance.get_materialized_partitions(key))
            todo = sorted(d for d in rows_by_day if d >= MARKET_START and d not in done)
            events = [dg.AssetMaterialization(
                key, partition=day, description=f"candles loaded {self.source}",
                metadata={"rows": rows_by_day[day], "source": self.source,
                          "dagster/row_count": rows_by_day[day]}) for day in todo]
            for i in range(0, len(events), BATCH):
                self.report_batch(events[i:i + BATCH])
        except _STORAGE_ERRORS as e:
            raise TemporaryError(f"Dagster catalog: {key.to_user_string()} events: {e}") from e
        return len(todo)

    def report_batch(self, events: Sequence[dg.AssetMaterialization]) -> None:
        """Runless materializations, one transaction per shard on SQLite."""
        from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
            SqliteEventLogStorage,
        )

        storage = self.instance.event_log_storage
        if isinstance(storage, SqliteEventLogStorage):
            _sqlite_batch(storage, events)
        else:
            for event in events:
                self.instance.report_runless_asset_event(event)

    def versions_registered(self, keys: Sequence[str], registered_now: int,
                            table_md: str | None = None) -> list[str]:
        """Add the missing version partitions; materialize ``strategy_versions`` when versions
        were registered now or it was never materialized. Returns the partitions added."""
        try:
            known = set(self.instance.get_dynamic_partitions(STRATEGY_VERSION_PARTITIONS))
            new = [k for k in keys if k not in known]
            if new:
                self.instance.add_dynamic_partitions(STRATEGY_VERSION_PARTITIONS, new)
            asset = dg.AssetKey("strategy_versions")
            if registered_now or self.instance.get_latest_materialization_event(asset) is None:
                meta: dict[str, dg.RawMetadataValue] = {
                    "versions": len(keys), "registered_now": registered_now,
                    "new_partitions": ", ".join(new) or "none", "source": self.source}
                if table_md:
                    meta["table"] = dg.MetadataValue.md(table_md)
                self.instance.report_runless_asset_event(dg.AssetMaterialization(
                    asset, description=f"strategy versions registered {self.source}",
                    metadata=meta))
        except _STORAGE_ERRORS as e:
            raise TemporaryError(f"Dagster catalog: strategy versions: {e}") from e
        return new


def _sqlite_batch(storage: SqliteEventLogStorage, events: Sequence[dg.AssetMaterialization]
                  ) -> None:
    """``SqliteEventLogStorage.store_event`` of runless materializations, one transaction per
    shard for the whole batch (see the module docstring)."""
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID
    from dagster._core.storage.sqlalchemy_compat import db_result

    now = time.time()
    entries = [EventLogEntry(
        user_message="", level=logging.INFO, job_name=RUNLESS_JOB_NAME, run_id=RUNLESS_RUN_ID,
        error_info=None, timestamp=now, step_key=None,
        dagster_event=DagsterEvent(
            event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
            event_specific_data=StepMaterializationData(e), job_name=RUNLESS_JOB_NAME))
        for e in events]
    if not entries:
        return
    with storage.run_connection(RUNLESS_RUN_ID) as conn:
        conn.execute(storage.prepare_insert_event_batch(entries))
    with storage.index_transaction() as conn:
        for entry in entries:
            with db_result(conn, storage.prepare_insert_event(entry)) as result:
                event_id = result.inserted_primary_key[0]
            storage._store_asset_event_tags(conn, [entry], [event_id])  # noqa: SLF001
            storage._store_asset_event(conn, entry, event_id)  # noqa: SLF001
