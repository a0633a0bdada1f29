"""Kraken private REST: the signed sender, the per-key call counter and raw private calls.

Contract:
- ``enable_private(client, credentials, tier=…, nonces=…) -> KrakenPrivate`` registers a
  ``"private"`` sender on a ``KrakenClient``: every call takes a fresh nonce from the one
  ``NonceSource`` (strictly increasing), is url-encoded, signed (``signing.sign``) and POSTed to
  ``/0/private/<Method>`` through the client's pipeline, so the client's send lock makes it *one
  private caller at a time* and the client's error mapping applies.
- ``EAPI:Invalid nonce`` means Kraken refused the request before it reached the engine: the
  sender re-sends it once with a fresh nonce; a second refusal surfaces as ``OperationalError``.
- Private call counter (per key): a ``TokenBucket`` with capacity = the tier's maximum and rate =
  its decay (``TIERS``: starter 15/0.33 s⁻¹, intermediate 20/0.5, pro 20/1). ``call_cost``:
  TradesHistory/Ledgers/QueryLedgers cost 2; AddOrder/CancelOrder/Amend/Edit (the separate
  per-pair trading limiter) cost 0; everything else 1.
- Retry policy (the client's pipeline): reads (Balance, TradeBalance, TradeVolume, OpenOrders,
  ClosedOrders, QueryOrders, QueryTrades, TradesHistory, GetWebSocketsToken) and CancelOrder
  (cancelling twice is harmless) are idempotent and retried with back-off; ``AddOrder`` is not:
  a timeout, 5xx or ``EService:*`` raises ``AmbiguousOrderError`` (reconcile by client order id,
  never resend). Auth errors (``EAPI:Invalid key|signature``, permission) → ``OperationalError``.
- Secrets never reach an error message, a log line or a ``repr`` (``Credentials`` hides them;
  error messages never contain request parameters or headers).
- ``KrakenPrivate`` methods return the raw ``result`` after a shape check (``DataError`` when
  it is not an object); parsing into domain types is ``execution.py``'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trading_brain.errors import ConfigError, DataError

from .client import KrakenClient
from .ratelimit import TokenBucket
from .signing import Credentials, NonceSource, encode_body

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tier:
    max_counter: float
    decay_per_s: float


TIERS: dict[str, Tier] = {
    "starter": Tier(15, 0.33),
    "intermediate": Tier(20, 0.5),
    "pro": Tier(20, 1.0),
}
_COST_2 = frozenset({"TradesHistory", "Ledgers", "QueryLedgers"})
_COST_0 = frozenset({"AddOrder", "CancelOrder", "AmendOrder", "EditOrder", "AddOrderBatch",
                     "CancelOrderBatch"})
_NOT_IDEMPOTENT = frozenset({"AddOrder", "AddOrderBatch", "EditOrder", "AmendOrder"})
_INVALID_NONCE = "EAPI:Invalid nonce"


def call_cost(method: str) -> float:
    """What one call of ``method`` adds to Kraken's per-key REST counter."""
    if method in _COST_2:
        return 2.0
    return 0.0 if method in _COST_0 else 1.0


class PrivateSender:
    """Signs and posts one private request; re-sends once on ``EAPI:Invalid nonce``."""

    def __init__(self, client: KrakenClient, credentials: Credentials, nonces: NonceSource) -> None:
        self._client = client
        self._credentials = credentials
        self.nonces = nonces
        self.nonce_retries = 0

    def __call__(self, method: str, params: Mapping[str, Any], timeout: float | None = None) -> Any:
        path = f"/0/private/{method}"
        answer = self._post(path, params)
        errors = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(errors, list) and any(str(e).startswith(_INVALID_NONCE) for e in errors):
            self.nonce_retries += 1
            log.warning("Kraken %s: invalid nonce; re-sending once with a fresh nonce", method)
            answer = self._post(path, params)
        return answer

    def _post(self, path: str, params: Mapping[str, Any]) -> Any:
        """One signed POST with a fresh nonce (any ``nonce`` in ``params`` is replaced)."""
        nonce = self.nonces.next()
        body = encode_body({**{k: v for k, v in params.items() if k != "nonce"}, "nonce": nonce})
        return self._client.http_post(path, body, self._credentials.headers(path, nonce, body))

    def __repr__(self) -> str:
        return "PrivateSender(credentials=***)"


class KrakenPrivate:
    """Raw Kraken private calls over a ``KrakenClient`` with a registered private sender."""

    def __init__(self, client: KrakenClient, sender: PrivateSender, bucket: TokenBucket) -> None:
        self.client = client
        self.sender = sender
        self.bucket = bucket

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """One private call through the pipeline (retried only when idempotent)."""
        idempotent = method not in _NOT_IDEMPOTENT
        return self.client._call("private", method, params, idempotent=idempotent)

    def _obj(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        res = self.call(method, params)
        if not isinstance(res, dict):
            raise DataError(f"Kraken {method}: result is not an object")
        return res

    def balance(self) -> dict[str, Any]:
        return self._obj("Balance")

    def trade_volume(self, pairs: list[str]) -> dict[str, Any]:
        return self._obj("TradeVolume", {"pair": ",".join(pairs)} if pairs else None)

    def add_order(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._obj("AddOrder", params)

    def cancel_order(self, *, txid: str | None = None,
                     cl_ord_id: str | None = None) -> dict[str, Any]:
        if (txid is None) == (cl_ord_id is None):
            raise ConfigError("cancel_order needs exactly one of txid or cl_ord_id")
        return self._obj("CancelOrder", {"txid": txid} if txid else {"cl_ord_id": cl_ord_id})

    def open_orders(self, cl_ord_id: str | None = None) -> dict[str, Any]:
        params = {"cl_ord_id": cl_ord_id} if cl_ord_id else None
        return self._field(self._obj("OpenOrders", params), "open", "OpenOrders")

    def closed_orders(self, cl_ord_id: str | None = None, start: int | None = None,
                      ofs: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if cl_ord_id:
            params["cl_ord_id"] = cl_ord_id
        if start is not None:
            params["start"] = start
        if ofs:
            params["ofs"] = ofs
        return self._obj("ClosedOrders", params)

    def query_orders(self, txids: list[str]) -> dict[str, Any]:
        if not txids or len(txids) > 50:
            raise ConfigError("QueryOrders takes 1..50 txids")
        return self._obj("QueryOrders", {"txid": ",".join(txids)})

    def trades_history(self, start: float | None = None, ofs: int = 0) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if start is not None:
            params["start"] = start
        if ofs:
            params["ofs"] = ofs
        return self._obj("TradesHistory", params)

    def websockets_token(self) -> str:
        res = self._obj("GetWebSocketsToken")
        token = res.get("token")
        if not isinstance(token, str) or not token:
            raise DataError("Kraken GetWebSocketsToken: missing token")
        return token

    @staticmethod
    def _field(res: dict[str, Any], name: str, method: str) -> dict[str, Any]:
        value = res.get(name)
        if not isinstance(value, dict):
            raise DataError(f"Kraken {method}: {name!r} is not an object")
        return value


def enable_private(
    client: KrakenClient,
    credentials: Credentials,
    *,
    tier: str = "starter",
    nonces: NonceSource | None = None,
) -> KrakenPrivate:
    """Register the signed private sender and its call-counter bucket on ``client``."""
    if tier not in TIERS:
        raise ConfigError(f"unknown Kraken tier {tier!r}; allowed: {', '.join(TIERS)}")
    t = TIERS[tier]
    bucket = TokenBucket(t.decay_per_s, t.max_counter, monotonic=client.public_bucket._monotonic,
                         sleep=client._sleep)
    sender = PrivateSender(client, credentials, nonces or NonceSource())
    client.register_sender("private", sender, bucket, call_cost)
    return KrakenPrivate(client, sender, bucket)
