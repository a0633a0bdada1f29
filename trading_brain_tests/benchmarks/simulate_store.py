"""`simulate` with the trading tables in an in-memory DuckDB instead of the memory book.

The alternative ``adapters/memory`` is measured against (issue 10: "keep the in-memory book only
if it earns its place"). ``ScratchStore`` is the real ``Store`` (same SQL, same methods) over an
in-memory DuckDB database attached to the warehouse's own DuckDB instance (``ATTACH ':memory:'``)
and carrying the same migrations; at the start it copies the warehouse's trading tables, the
loop's scans, ticks and paper venues talk to it, and once per simulated day (each chunk, inside
the chunk's transaction, before its checkpoint) its trading tables replace the warehouse's.
Candles, indicators, scans, strategy versions, pairs and ``system_meta`` stay the warehouse's
(what the memory book passes through too).

Run the CLI with it (the same arguments as ``trading-brain``):
``.venv/bin/python -m trading_brain_tests.benchmarks.simulate_store --home H simulate --days 30
--seed 7 --start 2026-10-01T00:00:00Z --json``. Not a product path: only this module switches
``adapters.memory.flush``'s ``load``/``flush`` to it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

from trading_brain.adapters.duckdb import migrations
from trading_brain.adapters.duckdb.connection import run
from trading_brain.adapters.duckdb.store import Store
from trading_brain.adapters.memory import flush as memory_flush
from trading_brain.adapters.memory.book import PASS

SCRATCH = "tb_scratch"
TABLES = ("orders", "order_intents", "fills", "cash_ledger", "positions", "portfolio_snapshots",
          "risk_events", "risk_state", "paper_accounts")


class ScratchStore(Store):
    """``Store`` over the attached in-memory database (see the module docstring)."""

    def __init__(self, warehouse: Store, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__(warehouse.path)
        self.warehouse = warehouse
        self.db = run(con, "SELECT current_database()")[0][0]
        run(con, f"ATTACH IF NOT EXISTS ':memory:' AS {SCRATCH}")
        self.cur = con.cursor()
        self.cur.execute(f"USE {SCRATCH}")
        migrations.migrate(self.cur)
        for t in TABLES:
            run(con, f"DELETE FROM {SCRATCH}.{t}")
            run(con, f'INSERT INTO {SCRATCH}.{t} SELECT * FROM "{self.db}".{t}')

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        yield self.cur

    @contextmanager
    def session(self) -> Iterator[Store]:
        yield self

    def flush(self) -> None:
        """Replace the warehouse's trading tables by the scratch ones (on the warehouse's
        session connection, inside the caller's transaction)."""
        with self.warehouse.connect() as con:
            for t in TABLES:
                run(con, f'DELETE FROM "{self.db}".{t}')
                run(con, f'INSERT INTO "{self.db}".{t} SELECT * FROM {SCRATCH}.{t}')


def _delegate(name: str) -> Callable[..., Any]:
    def call(self: ScratchStore, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.warehouse, name)(*args, **kwargs)
    return call


# The tables the memory book does not hold stay the warehouse's: what it passes through (PASS)
# and what it answers by explicit delegation.
DELEGATED = PASS | {"read_candles", "read_indicators", "read_asset_pairs", "active_version",
                    "strategy_version", "get_meta", "set_meta"}

for _name in DELEGATED:
    setattr(ScratchStore, _name, _delegate(_name))


def use_scratch() -> None:
    """Make ``simulate`` use a ``ScratchStore`` where it would load a ``MemoryBook``."""
    def load(store: Store) -> Any:
        with store.connect() as con:
            return ScratchStore(store, con)

    def flush(book: Any) -> None:
        book.flush()

    memory_flush.load = load  # type: ignore[assignment]  # the measured switch, nowhere else
    memory_flush.flush = flush  # type: ignore[assignment]  # the measured switch


def main(argv: Sequence[str]) -> None:
    from trading_brain.cli import cli

    use_scratch()
    cli.main(args=list(argv), prog_name="trading-brain")


if __name__ == "__main__":
    main(sys.argv[1:])
