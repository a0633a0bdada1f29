"""The account's fee tier from the live venue: read at the first executor tick after start and
then once per UTC day, stored on the pairs (issue 4: "balances and fee tier from the venue at
start and daily").

Contract:
- ``refresh_due(now, last, first_tick, failed_at)`` (pure): due at the first tick of this process,
  when never refreshed, or when the last refresh was on an earlier UTC day — but never sooner
  than ``RETRY_AFTER`` after a failed attempt (a venue whose TradeVolume keeps failing must not
  cost every tick).
- ``with_venue_fees(pairs, tiers)`` (pure): the pairs whose taker/maker rates differ from the
  venue's, with the venue's rates (fractions, e.g. 0.0024).
- ``refresh_venue_fees(store, venue, market, symbols, now, live=…)``: paper (``live=False``) does
  nothing at all. No traded symbol has a stored pair yet (a fresh home whose ``asset_pairs``
  are not written): nothing is read or stored (``skipped="no_pairs"``), so the first tick after
  they exist reads the tier. Also due whenever the stored tiers miss a traded symbol with a
  pair (a home that once stored ``{}``). When due, reads the tiers of those symbols (one
  ``venue.fee_tiers`` call when the venue has it, else ``fee_tier`` per symbol), then in ONE
  transaction upserts the changed pairs (``store.upsert_asset_pairs`` appends a
  ``fee_schedule`` row only when a rate changed) and writes ``system_meta``
  ``venue.fees_refreshed`` (ISO time of this refresh) and ``venue.fee_tiers`` (JSON per symbol).
  An answer without a tier for every symbol asked (e.g. empty) is a failure, not a refresh.
  A venue failure writes nothing (the old fees stay) and is remembered for this process
  (retried after ``RETRY_AFTER``, until it succeeds):
  ``TemporaryError`` is re-raised (the executor sensor skips the tick like any other transient
  failure); any other ``TradingBrainError`` (bad payload, missing API permission) is returned
  in ``FeeRefresh.error`` so trading goes on with the stored fees.
- ``overlay_venue_fees(store, pairs)``: ``pairs`` with the last venue tier stored by a refresh
  (for writers of ``asset_pairs`` that only know the public tier-0 schedule).
- Process state (first tick, last failure) is per warehouse file; ``forget_process_state()``
  simulates a restart in tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.orders import FeeTier
from trading_brain.errors import DataError, TemporaryError, TradingBrainError
from trading_brain.ports import Exchange

META_REFRESHED = "venue.fees_refreshed"
META_TIERS = "venue.fee_tiers"
RETRY_AFTER = timedelta(minutes=5)


class FeeStore(Protocol):
    """The warehouse methods a refresh uses (``adapters.duckdb.Store``; ``atomic()`` = one
    transaction on one connection, joined by the methods called inside it)."""

    @property
    def path(self) -> object: ...  # the warehouse file: keys this process's refresh state

    def atomic(self) -> AbstractContextManager[object]: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def read_asset_pairs(self) -> dict[str, AssetPair]: ...
    def upsert_asset_pairs(self, market: str, pairs: list[AssetPair]) -> int: ...


@dataclass
class FeeRefresh:
    """What one call did: ``skipped`` (why nothing was read), the symbols read and changed."""

    skipped: str | None = None
    read: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class _Process:
    started: bool = False
    failed_at: datetime | None = None


_STATE: dict[str, _Process] = {}
_LOCK = threading.Lock()


def forget_process_state() -> None:
    """Forget what this process did (a restart, for tests)."""
    with _LOCK:
        _STATE.clear()


def refresh_due(now: datetime, last: datetime | None, first_tick: bool,
                failed_at: datetime | None = None, retry_after: timedelta = RETRY_AFTER) -> bool:
    """Whether the fee tier should be read from the venue now (see the module contract)."""
    if failed_at is not None and now - failed_at < retry_after:
        return False
    if first_tick or last is None:
        return True
    return last.astimezone(UTC).date() < now.astimezone(UTC).date()


def with_venue_fees(pairs: Mapping[str, AssetPair], tiers: Mapping[str, FeeTier]
                    ) -> list[AssetPair]:
    """The pairs among ``tiers`` whose stored rates differ, carrying the venue's rates."""
    out = []
    for symbol in sorted(tiers):
        p, t = pairs.get(symbol), tiers[symbol]
        if p is None:
            continue
        taker, maker = float(t.taker), float(t.maker)
        if (p.fee_taker, p.fee_maker) != (taker, maker):
            out.append(AssetPair.model_validate(
                {**p.model_dump(), "fee_taker": taker, "fee_maker": maker}))
    return out


def overlay_venue_fees(store: FeeStore, pairs: Mapping[str, AssetPair]) -> dict[str, AssetPair]:
    """``pairs`` with the rates of the last venue refresh, where one is stored."""
    raw = store.get_meta(META_TIERS)
    if not raw:
        return dict(pairs)
    tiers = {s: FeeTier.model_validate(t) for s, t in json.loads(raw).items()}
    return {**pairs, **{p.symbol: p for p in with_venue_fees(pairs, tiers)}}


@runtime_checkable
class ManyFeeTiers(Protocol):
    """A live venue reading the tiers of many symbols in one call (``KrakenExecution``)."""

    def fee_tiers(self, symbols: list[str]) -> Mapping[str, FeeTier]: ...


@runtime_checkable
class OneFeeTier(Protocol):
    """A live venue reading one symbol's tier per call."""

    def fee_tier(self, symbol: str) -> FeeTier: ...


# The active slot's venue: only a live one that reads fee tiers is asked (``live=True``).
FeeVenue = Exchange | ManyFeeTiers | OneFeeTier


def _read_tiers(venue: FeeVenue, symbols: list[str]) -> dict[str, FeeTier]:
    if isinstance(venue, ManyFeeTiers):
        return dict(venue.fee_tiers(symbols))
    if isinstance(venue, OneFeeTier):
        return {s: venue.fee_tier(s) for s in symbols}
    raise TypeError(f"{type(venue).__name__} reads no fee tier")


def refresh_venue_fees(store: FeeStore, venue: FeeVenue, market: str, symbols: Iterable[str],
                       now: datetime, *, live: bool) -> FeeRefresh:
    """Read and store the venue's fee tier when due (see the module contract)."""
    if not live:
        return FeeRefresh(skipped="paper")
    key = str(getattr(store, "path", id(store)))
    with _LOCK:
        proc = _STATE.setdefault(key, _Process())
    pairs = store.read_asset_pairs()
    wanted = sorted({s for s in symbols if s in pairs})
    if not wanted:  # a fresh home: asset_pairs not written yet; nothing stored, due next tick
        return FeeRefresh(skipped="no_pairs")
    last_raw, stored = store.get_meta(META_REFRESHED), store.get_meta(META_TIERS)
    last = datetime.fromisoformat(last_raw) if last_raw else None
    have = json.loads(stored) if stored else {}
    first = not proc.started or any(s not in have for s in wanted)
    if not refresh_due(now, last, first, proc.failed_at):
        return FeeRefresh(skipped="not_due")
    try:
        tiers = _read_tiers(venue, wanted)
        missing = [s for s in wanted if s not in tiers]
        if missing:  # an empty or partial answer is not a refresh
            raise DataError(f"the venue returned no fee tier for {', '.join(missing)}")
    except TradingBrainError as e:
        proc.failed_at = now
        if isinstance(e, TemporaryError):
            raise
        return FeeRefresh(read=wanted, error=f"{type(e).__name__}: {e}")
    changed = with_venue_fees(pairs, tiers)
    payload = json.dumps({s: t.model_dump(mode="json") for s, t in sorted(tiers.items())})
    with store.atomic():
        if changed:
            store.upsert_asset_pairs(market, changed)
        store.set_meta(META_TIERS, payload)
        store.set_meta(META_REFRESHED, now.astimezone(UTC).isoformat())
    proc.started, proc.failed_at = True, None
    return FeeRefresh(read=sorted(tiers), changed=[p.symbol for p in changed])
