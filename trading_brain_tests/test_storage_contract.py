"""Both stores implement every storage Protocol of ``trading_brain.ports`` in full.

Statically: the assignments in ``_static`` are checked by the type checker (``make lint``
runs basedpyright over the tests' imports of this module too: a missing or mistyped method
of ``Store`` or ``MemoryBook`` is an error there). At run time: every Protocol is
``runtime_checkable`` and each store is an instance of each (method names present), and no
code outside the two stores probes which one it has (no ``getattr``/``hasattr`` of a store
capability, no ``isinstance`` against ``MemoryBook``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import trading_brain
from trading_brain import ports
from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.memory.book import MemoryBook
from trading_brain.ports import (
    IntentStore,
    LedgerStore,
    MetaStore,
    PaperBookStore,
    RiskStore,
    TradingStore,
)

PROTOCOLS = (LedgerStore, RiskStore, IntentStore, PaperBookStore, MetaStore, TradingStore)


def _static(store: Store, book: MemoryBook) -> None:
    """Never called: the type checker proves each assignment (structural typing)."""
    a: TradingStore = store
    b: TradingStore = book
    c: LedgerStore = store
    d: LedgerStore = book
    e: RiskStore = store
    f: RiskStore = book
    g: PaperBookStore = store
    h: PaperBookStore = book
    i: IntentStore = store
    j: IntentStore = book
    k: MetaStore = store
    m: MetaStore = book
    del a, b, c, d, e, f, g, h, i, j, k, m


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.__name__)
def test_both_stores_are_instances_of_every_storage_protocol(tmp_path: Path, proto: type) -> None:
    store = Store.open(tmp_path / "w.duckdb")
    book = MemoryBook(store)
    assert isinstance(store, proto)
    assert isinstance(book, proto)


def test_the_trading_store_is_the_union_of_the_parts() -> None:
    def members(p: type) -> set[str]:
        return {n for n in vars(p) if not n.startswith("_")}

    parts = set().union(*(members(p) for p in PROTOCOLS[:-1]))
    assert parts and all(issubclass(TradingStore, p) for p in PROTOCOLS[:-1])
    assert not members(TradingStore) - parts  # nothing of its own
    assert all(callable(getattr(ports, p.__name__)) for p in PROTOCOLS)


# what a probe of the store's kind looks like (the names only the book used to have)
PROBE = re.compile(r"(getattr|hasattr)\([^)]*\"(memo_fill_book|keep_paper_book|"
                   r"paper_book_state|open_counts|busy_slots)\"|isinstance\([^)]*MemoryBook")


def test_no_code_outside_the_stores_asks_which_store_it_has() -> None:
    root = Path(trading_brain.__file__).parent
    inside = {root / "adapters" / "memory", root / "adapters" / "duckdb"}
    found = [f"{p.relative_to(root)}: {m.group(0)}" for p in root.rglob("*.py")
             if not any(d in p.parents for d in inside)
             for m in PROBE.finditer(p.read_text(encoding="utf-8"))]
    assert found == []
