"""The paper venue's book (pydantic models, stored as JSON) and its incremental JSON writer.

``BookWriter.dump(book)`` returns ``book.model_dump_json()`` byte for byte without
re-serialising the whole book on every save (see ``dump``); ``pruned(book)`` must be called after
old orders or fills were dropped from the book.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from itertools import islice
from operator import is_

from pydantic import BaseModel, ConfigDict

from trading_brain.domain.orders import Fill, OrderState, Side

OPEN_STATES = ("open", "partially_filled")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PaperOrder(_Model):
    cid: str
    venue_order_id: str
    symbol: str
    side: Side
    type: str  # market | limit | stop-loss | take-profit
    quantity: Decimal
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    placed_at: datetime
    next_minute: datetime
    state: OrderState = "open"
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
    sl_cid: str | None = None  # the stop's client id when not the default (a re-armed stop)


class PaperBook(_Model):
    cash: Decimal
    holdings: dict[str, Decimal] = {}
    orders: dict[str, PaperOrder] = {}
    protections: dict[str, Protection] = {}
    fills: list[Fill] = []


def _plain(key: str) -> bool:
    """A key JSON writes as is (what pydantic writes for it is ``"key"``)."""
    return key.isascii() and key.isprintable() and '"' not in key and "\\" not in key


def _same(a: tuple, b: tuple) -> bool:
    """Whether two tuples hold the very same objects (identity, not equality: ``Decimal("1.0")
    == Decimal("1.00")`` and equal instants in two time zones compare equal but are written
    differently)."""
    return len(a) == len(b) and all(map(is_, a, b))


class BookWriter:
    """Keeps the JSON of what never changes (closed orders, fills) between saves, and the last
    JSON of each open order, protection and of the cash/holdings, reused while the values it was
    written from are the very same objects (every field value is immutable: str, Decimal,
    datetime, float, int, None; a change assigns a new object, so the memo can never be stale).
    An order object put under a key the book already holds must be announced (``forget``)."""

    def __init__(self) -> None:
        self._ojson: dict[str, str] = {}  # '"cid":{...}' of closed orders (they never change)
        self._prefix = ((0, ""), (0, ""))  # (n, JSON) of the first n orders (all closed), fills
        self._live: dict[str, tuple[tuple, str]] = {}  # open order/protection -> (values, JSON)
        self._cash: tuple[tuple, str] = ((), "")  # (cash, holdings items) -> JSON
        # the orders after the prefix at the last dump: (n, their ids, their texts, the open
        # ones as (index, order object)); a later dump re-reads only the open ones and the new
        # orders (keys are only appended until a prune, which calls ``pruned``)
        self._tail: tuple[int, list[str], list[str], list[tuple[int, PaperOrder]]] | None = None

    def pruned(self, b: PaperBook) -> None:
        """Forget what was pruned from ``b`` (the kept prefix no longer matches)."""
        self._ojson = {c: t for c, t in self._ojson.items() if c in b.orders}
        self._prefix = ((0, ""), (0, ""))
        self._tail = None

    def forget(self, cid: str) -> None:
        """Order ``cid`` of the book was replaced by another object (its JSON may change)."""
        self._ojson.pop(cid, None)
        self._live.pop("o" + cid, None)
        self._prefix = ((0, ""), self._prefix[1])
        self._tail = None

    def _kept(self, key: str, model: BaseModel) -> str:
        """``model.model_dump_json()``, reused while its field values are the same objects."""
        values = tuple(model.__dict__.values())
        kept = self._live.get(key)
        if kept is not None and _same(kept[0], values):
            return kept[1]
        text = model.model_dump_json()
        self._live[key] = (values, text)
        return text

    def _order(self, c: str, o: PaperOrder) -> str | None:
        """'"cid":{...}' of order ``o`` (None: a key pydantic would escape)."""
        text = self._ojson.get(c)  # memoised keys were checked plain
        if text is None:
            if not _plain(c):
                return None
            if o.state not in OPEN_STATES:
                text = self._ojson[c] = f'"{c}":{o.model_dump_json()}'
                self._live.pop("o" + c, None)
            else:
                text = f'"{c}":{self._kept("o" + c, o)}'
        return text

    def _rest(self, b: PaperBook, n: int
              ) -> tuple[list[str], list[str], list[PaperOrder | None]] | None:
        """The client ids and texts of the orders after the first ``n`` and, for each, the order
        when it is open (else None): from the last dump's tail when it still holds, with its
        open orders and the new orders (the last keys) looked at again (None: a key that is not
        plain)."""
        tail = self._tail
        cids: list[str]
        texts: list[str]
        live: list[PaperOrder | None]
        new: Iterable[tuple[str, PaperOrder]]
        if tail is not None and tail[0] == n and len(b.orders) >= n + len(tail[1]) \
                and all(b.orders.get(tail[1][i]) is o for i, o in tail[3]):  # else: redo
            cids, texts, live = list(tail[1]), list(tail[2]), [None] * len(tail[1])
            for i, o in tail[3]:
                texts[i] = self._order(cids[i], o)  # type: ignore[assignment]  # seen plain
                live[i] = o if o.state in OPEN_STATES else None
            added = len(b.orders) - n - len(cids)
            new = list(islice(reversed(b.orders.items()), added))[::-1] if added else []
        else:
            cids, texts, live = [], [], []
            new = islice(b.orders.items(), n, None)
        for c, o in new:
            text = self._order(c, o)
            if text is None:
                return None
            cids.append(c)
            texts.append(text)
            live.append(o if o.state in OPEN_STATES else None)
        return cids, texts, live

    def dump(self, b: PaperBook) -> str:
        """``self.book.model_dump_json()``, byte for byte, without re-serialising the whole book
        on every save: closed orders and fills never change, and until the next prune the book
        only grows at the end, so the JSON of its leading closed orders and of its fills is kept
        (``_prefix``) and only the rest is written (of which only the open orders and the new
        ones are looked at again, ``_tail``)."""
        (n, head), (m, fills) = self._prefix
        rest = self._rest(b, n)
        if rest is None or not all(map(_plain, b.protections)):
            return b.model_dump_json()
        cids, texts, live = rest
        k = 0
        while k < len(live) and live[k] is None:  # leading closed orders join the prefix
            k += 1
        if k:
            for c in cids[:k]:
                self._ojson.pop(c, None)  # in ``head`` now
            head = ",".join([head, *texts[:k]] if n else texts[:k])
            n, cids, texts, live = n + k, cids[k:], texts[k:], live[k:]
        self._tail = (n, cids, texts, [(i, o) for i, o in enumerate(live) if o is not None])
        new = [f.model_dump_json() for f in islice(b.fills, m, None)]
        if new:
            fills, m = ",".join([fills, *new] if m else new), len(b.fills)
        self._prefix = ((n, head), (m, fills))
        values = (b.cash, *(x for kv in b.holdings.items() for x in kv))
        if not _same(self._cash[0], values):
            self._cash = (values, b.model_dump_json(include={"cash", "holdings"}))
        prot = ",".join(f'"{c}":{self._kept("p" + c, p)}' for c, p in b.protections.items())
        for key in [k for k in self._live if k[0] == "p" and k[1:] not in b.protections]:
            del self._live[key]  # disarmed
        return "".join([self._cash[1][:-1], ',"orders":{', head, "," if n and texts else "",
                        ",".join(texts), '},"protections":{', prot, '},"fills":[', fills, "]}"])


class BookText:
    """A saved book whose JSON is made when first read (``text``): what a store that keeps
    the saved state object (the memory book, ``keep_paper_book``) holds instead of the text.
    Exact because the venue saves after every change of its book (``PaperExchange._save``), so
    until the next save, i.e. while this is the state held, the book is the one saved; ``text``
    refuses a book whose orders, fills or cash moved since (it would not be the state saved)."""

    __slots__ = ("_book", "_seen", "_text", "_writer")

    def __init__(self, writer: BookWriter, book: PaperBook) -> None:
        self._writer: BookWriter | None = writer
        self._book: PaperBook | None = book
        self._seen = (len(book.orders), len(book.fills), book.cash)
        self._text: str | None = None

    def text(self) -> str:
        """``book.model_dump_json()`` of the book as saved (made once)."""
        if self._text is None:
            b, w = self._book, self._writer
            assert b is not None and w is not None
            seen = self._seen
            if (len(b.orders), len(b.fills)) != seen[:2] or b.cash is not seen[2]:
                raise RuntimeError("the paper book changed after it was saved")
            self._text, self._book, self._writer = w.dump(b), None, None
        return self._text

