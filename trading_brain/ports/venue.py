"""Venue and alert ports: ``Exchange`` (where orders go: the paper venue or Kraken) and
``Notifier`` (an alert channel that never raises for delivery problems). Contracts on each
class."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from trading_brain.domain.orders import Balance, Fill, OrderAck, OrderRequest, OrderStatus


@runtime_checkable
class Exchange(Protocol):
    """Where orders go: the paper venue (``adapters/paper.py``) or Kraken (``adapters/kraken``).

    Contract: ``place_order`` sends one order keyed by ``req.client_order_id`` and is never
    retried by callers: ``OrderRejected`` = refused (nothing open), ``AmbiguousOrderError`` (or a
    ``TemporaryError``) = fate unknown, settle with ``order_by_client_id`` (None = the venue never
    accepted it). ``fills_since(t)`` returns fills at or after ``t``, oldest first, with stable
    ``fill_id``s (callers dedupe on them). ``cancel_order`` is False when the order is unknown or
    already closed. ``balances`` are totals per common asset code (``USD``, ``BTC``).
    """

    name: str

    def place_order(self, req: OrderRequest) -> OrderAck: ...

    def order_by_client_id(self, client_order_id: str) -> OrderStatus | None: ...

    def open_orders(self) -> list[OrderStatus]: ...

    def cancel_order(self, client_order_id: str | None = None,
                     venue_order_id: str | None = None) -> bool: ...

    def fills_since(self, t: datetime) -> list[Fill]: ...

    def balances(self) -> Balance: ...


@runtime_checkable
class Notifier(Protocol):
    """Where alerts go (a log always; Telegram or a webhook in a later issue).

    ``level`` is ``"ERROR"``, ``"WARN"`` or ``"INFO"``; ``text`` is one human-readable message.
    ``notify`` must not raise for delivery problems (an alert channel never stops the loop).
    A channel only delivers; once-per-key delivery (the ``notifications`` table) is
    ``trading_brain.app.notify.deliver``, which every alert source (alert sensor, executor, kill)
    goes through. Implementations: ``trading_brain.app.notify.LogNotifier`` (always on).
    """

    name: str

    def notify(self, level: str, text: str) -> None: ...
