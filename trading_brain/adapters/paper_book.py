"""The paper venue's book (pydantic models, stored as JSON) and its incremental JSON writer.

``BookWriter.dump(book)`` returns ``book.model_dump_json()`` byte for byte without
re-serialising the whole book on every save (see ``dump``); ``pruned(book)`` must be called after
old orders or fills were dropped from the book.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from itertools import islice

from pydantic import BaseModel, ConfigDict

from trading_brain.domain.orders import Fill

OPEN_STATES = ("open", "partially_filled")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PaperOrder(_Model):
    cid: str
    venue_order_id: str
    symbol: str
    side: str
    type: str  # market | limit | stop-loss | take-profit
    quantity: Decimal
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    placed_at: datetime
    next_minute: datetime
    state: str = "open"
    filled_qty: Decimal = Decimal(0)
    value: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    fills: int = 0
    reason: str | None = None
    updated_at: datetime


class Protection(_Model):
    entry_cid: str
    symbol: str
    sl: float | None
    tp: float | None
    next_bar: datetime  # open time of the next stop bar to check


class PaperBook(_Model):
    cash: Decimal
    holdings: dict[str, Decimal] = {}
    orders: dict[str, PaperOrder] = {}
    protections: dict[str, Protection] = {}
    fills: list[Fill] = []


def _plain(key: str) -> bool:
    """A key JSON writes as is (what pydantic writes for it is ``"key"``)."""
    return key.isascii() and key.isprintable() and '"' not in key and "\\" not in key


class BookWriter:
    """Keeps the JSON of what never changes (closed orders, fills) between saves."""

    def __init__(self) -> None:
        self._ojson: dict[str, str] = {}  # '"cid":{...}' of closed orders (they never change)
        self._prefix = ((0, ""), (0, ""))  # (n, JSON) of the first n orders (all closed), fills

    def pruned(self, b: PaperBook) -> None:
        """Forget what was pruned from ``b`` (the kept prefix no longer matches)."""
        self._ojson = {c: t for c, t in self._ojson.items() if c in b.orders}
        self._prefix = ((0, ""), (0, ""))

    def dump(self, b: PaperBook) -> str:
        """``self.book.model_dump_json()``, byte for byte, without re-serialising the whole book
        on every save: closed orders and fills never change, and until the next prune the book
        only grows at the end, so the JSON of its leading closed orders and of its fills is kept
        (``_prefix``) and only the rest is written."""
        memo = self._ojson
        (n, head), (m, fills) = self._prefix
        grow, rest = True, []
        for c, o in islice(b.orders.items(), n, None):
            text = memo.get(c)  # memoised keys were checked plain
            if text is None:
                if not _plain(c):
                    return b.model_dump_json()
                text = f'"{c}":{o.model_dump_json()}'
                if o.state not in OPEN_STATES:
                    memo[c] = text
            if grow and o.state not in OPEN_STATES:
                head, n = f"{head},{text}" if n else text, n + 1
                del memo[c]  # in ``head`` now
            else:
                grow = False
                rest.append(text)
        new = [f.model_dump_json() for f in islice(b.fills, m, None)]
        if new:
            fills, m = ",".join([fills, *new] if m else new), len(b.fills)
        self._prefix = ((n, head), (m, fills))
        orders = ",".join([head, *rest] if n else rest)
        cash = b.model_dump_json(include={"cash", "holdings"})
        prot = b.model_dump_json(include={"protections"})
        return f'{cash[:-1]},"orders":{{{orders}}},{prot[1:-1]},"fills":[{fills}]}}'
