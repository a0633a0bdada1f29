"""Kraken REST client: krakenex underneath, our rate limit, retry policy and error mapping on top.

Contract:
- ``KrakenClient(rest_url, timeout_s, max_retries, public_calls_per_s, …)`` owns one krakenex
  ``API`` whose ``uri`` is ``rest_url``; every request carries ``timeout_s``. Clock, sleep and the
  jitter RNG are injectable so tests run fast and deterministic. The client is thread-safe:
  requests on its one krakenex session are serialised (the WS fallback poller shares it).
- Every call goes through one generic pipeline ``_call(scope, method, params, idempotent)``:
  rate limiter → send → envelope check (``error`` non-empty = failure, whatever ``result`` holds)
  → result. Vendor failures are mapped once by ``adapters.kraken.errors`` and raised
  ``from`` the original exception. Retryable errors (``TemporaryError``/``RateLimited``: network,
  timeout, HTTP 5xx/429/520, ``EService:Unavailable|Busy``, ``EGeneral:Too many requests``,
  ``EAPI:Rate limit exceeded``, ``EService:Throttled`` — after its timestamp) are retried up to
  ``max_retries`` times with exponential back-off and jitter, *only* when ``idempotent``. A
  non-idempotent call (a later ``AddOrder``) that fails transiently raises
  ``AmbiguousOrderError`` instead: reconcile, never resend. Anything else is raised at once.
- Public calls: ``server_time``, ``system_status``, ``asset_pairs``, ``ticker``, ``ohlc_page``
  and ``ohlc`` (exactly one request: the final, still-forming row is dropped, as is any row newer
  than ``last``). Kraken serves only the ``OHLC_MAX_ROWS`` (720) most recent candles per interval
  whatever ``since`` says, always up to the forming one, so asking again from ``last`` can never
  bring older rows: the client does not page.
- Private calls: ``adapters.kraken.private.enable_private`` registers a ``"private"`` sender with
  ``register_sender(scope, send, bucket, cost)`` (signing, nonce, its own per-key counter bucket,
  per-method cost); it posts with ``http_post`` on the same session, under the same send lock
  (one private caller at a time). A non-idempotent call refused by Kraken's own rate limiter
  (``EAPI:/EOrder:Rate limit exceeded``, ``EService:Throttled`` in the envelope) raises
  ``RateLimited``: the request was refused, not ambiguous.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import krakenex
import requests

from trading_brain.adapters.backoff import backoff_delay
from trading_brain.errors import AmbiguousOrderError, DataError, RateLimited, TemporaryError
from trading_brain.settings import KrakenSettings

from . import errors as kerrors
from .ratelimit import TokenBucket

log = logging.getLogger(__name__)

INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})
OHLC_MAX_ROWS = 720


@dataclass(frozen=True)
class OhlcPage:
    """One OHLC answer: result ``key`` (the pair key), raw ``rows`` and the ``last`` cursor."""

    key: str
    rows: list[list[Any]]
    last: int


class KrakenClient:
    """Rate-limited, retrying Kraken REST client (public calls)."""

    def __init__(
        self,
        rest_url: str,
        timeout_s: float = 10.0,
        max_retries: int = 4,
        public_calls_per_s: float = 1.0,
        *,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_time: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._wall_time = wall_time
        self._rng = rng or random.Random()
        self.public_bucket = TokenBucket(public_calls_per_s, 1.0, monotonic=monotonic, sleep=sleep)
        self._api = krakenex.API()
        self._send_lock = threading.Lock()
        self._api.uri = self.rest_url
        self._senders: dict[str, tuple[Callable[..., Any], TokenBucket]] = {
            "public": (self._api.query_public, self.public_bucket),
        }
        self._costs: dict[str, Callable[[str], float]] = {}

    @classmethod
    def from_settings(cls, settings: KrakenSettings, **kwargs: Any) -> KrakenClient:
        """Build from ``settings.KrakenSettings``; ``kwargs`` override the injectables."""
        return cls(
            settings.rest_url,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
            public_calls_per_s=settings.public_calls_per_s,
            **kwargs,
        )

    def close(self) -> None:
        self._api.close()

    def register_sender(
        self,
        scope: str,
        send: Callable[..., Any],
        bucket: TokenBucket,
        cost: Callable[[str], float] | None = None,
    ) -> None:
        """Add a sender ``send(method, params, timeout=…) -> body`` with its limiter and costs."""
        self._senders[scope] = (send, bucket)
        if cost is not None:
            self._costs[scope] = cost

    def http_post(self, path: str, body: str, headers: dict[str, str]) -> Any:
        """POST a form body to ``rest_url + path``; decoded JSON (HTTP errors raise)."""
        resp = self._api.session.post(
            self.rest_url + path,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
            timeout=self.timeout_s,
        )
        if resp.status_code not in (200, 201, 202):
            resp.raise_for_status()
            raise requests.exceptions.HTTPError(f"HTTP {resp.status_code}", response=resp)
        return resp.json()

    # ---- the generic pipeline -------------------------------------------------------------

    def public(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call a public method and return its ``result`` (retried: public calls are idempotent)."""
        return self._call("public", method, params, idempotent=True)

    def _call(
        self, scope: str, method: str, params: Mapping[str, Any] | None, *, idempotent: bool
    ) -> Any:
        send, bucket = self._senders[scope]
        cost = self._costs[scope](method) if scope in self._costs else 1.0
        attempt = 0
        while True:
            bucket.acquire(cost)
            try:
                return self._once(send, method, dict(params or {}))
            except TemporaryError as e:
                if not idempotent and isinstance(e, RateLimited) and getattr(
                    e, "kraken_errors", None
                ):
                    raise  # Kraken's limiter refused it: definitely not placed
                if not idempotent:
                    raise AmbiguousOrderError(
                        f"{e}; the request may have reached Kraken: reconcile, do not resend"
                    ) from e
                if attempt >= self.max_retries:
                    raise
                delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng)
                if isinstance(e, RateLimited):
                    wait = e.retry_after if e.retry_after is not None else delay
                    bucket.block_for(wait)
                    delay = max(delay, wait)
                log.warning("Kraken %s failed (%s); retry %d in %.2fs",
                            method, e, attempt + 1, delay)
                self._sleep(delay)
                attempt += 1

    def _once(self, send: Callable[..., Any], method: str, params: dict[str, Any]) -> Any:
        try:
            with self._send_lock:  # one krakenex session: one request at a time
                body = send(method, params, timeout=self.timeout_s)
        except (requests.exceptions.RequestException, ValueError, OSError) as e:
            raise kerrors.from_transport(method, e) from e
        if not isinstance(body, dict) or not isinstance(body.get("error", []), list):
            raise DataError(f"Kraken {method}: response is not a Kraken envelope")
        err = kerrors.from_kraken_errors(method, body.get("error") or [], self._wall_time())
        if err is not None:
            raise err
        if "result" not in body:
            raise DataError(f"Kraken {method}: response has neither result nor error")
        return body["result"]

    # ---- public calls ---------------------------------------------------------------------

    def server_time(self) -> datetime:
        res = self.public("Time")
        if not isinstance(res, dict) or not isinstance(res.get("unixtime"), int):
            raise DataError("Kraken Time: missing integer unixtime")
        return datetime.fromtimestamp(res["unixtime"], tz=UTC)

    def system_status(self) -> str:
        """``online``, ``maintenance``, ``cancel_only`` or ``post_only``."""
        res = self.public("SystemStatus")
        if not isinstance(res, dict) or not isinstance(res.get("status"), str):
            raise DataError("Kraken SystemStatus: missing status")
        return res["status"]

    def asset_pairs(self, pairs: Sequence[str] | None = None) -> dict[str, Any]:
        """Raw AssetPairs result keyed by pair key (all pairs when ``pairs`` is None)."""
        res = self.public("AssetPairs", {"pair": ",".join(pairs)} if pairs else None)
        if not isinstance(res, dict):
            raise DataError("Kraken AssetPairs: result is not an object")
        return res

    def ticker(self, pairs: Sequence[str]) -> dict[str, Any]:
        """Raw Ticker result keyed by pair key."""
        res = self.public("Ticker", {"pair": ",".join(pairs)})
        if not isinstance(res, dict):
            raise DataError("Kraken Ticker: result is not an object")
        return res

    def ohlc_page(self, pair: str, interval: int, since: int | None = None) -> OhlcPage:
        """One raw OHLC call (``interval`` in minutes; ``since`` in epoch seconds)."""
        if interval not in INTERVALS:
            raise ValueError(f"interval {interval} not in {sorted(INTERVALS)}")
        params: dict[str, Any] = {"pair": pair, "interval": interval}
        if since is not None:
            params["since"] = int(since)
        res = self.public("OHLC", params)
        if not isinstance(res, dict):
            raise DataError("Kraken OHLC: result is not an object")
        keys = [k for k in res if k != "last"]
        last = res.get("last")
        if len(keys) != 1 or isinstance(last, bool) or not isinstance(last, int):
            raise DataError("Kraken OHLC: expected one pair key and an integer 'last'")
        rows = res[keys[0]]
        if not isinstance(rows, list) or not all(
            isinstance(r, list) and r and isinstance(r[0], int) for r in rows
        ):
            raise DataError(f"Kraken OHLC {pair}: rows must be arrays starting with an int time")
        return OhlcPage(keys[0], rows, last)

    def ohlc(self, pair: str, interval: int, since: int | None = None) -> OhlcPage:
        """Committed candles after ``since`` among the newest Kraken serves, in one request.

        The venue answers with (up to) its 720 newest rows after ``since``, ending with the
        still-forming candle; that row is dropped, as is any row newer than ``last``. Older
        history is not available from the API at all (``import-ohlcv`` loads Kraken's export).
        """
        page = self.ohlc_page(pair, interval, since)
        committed = {r[0]: r for r in page.rows[:-1] if r[0] <= page.last}
        return OhlcPage(page.key, [committed[t] for t in sorted(committed)], page.last)
