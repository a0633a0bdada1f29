"""Kraken private-request signing, API credentials and the nonce.

Contract:
- ``sign(url_path, nonce, postdata, secret_b64)`` = Kraken's ``API-Sign``:
  ``base64(HMAC-SHA512(base64decode(secret), url_path + SHA256(str(nonce) + postdata)))`` where
  ``postdata`` is the exact url-encoded body (including ``nonce=…``). A bad secret raises
  ``OperationalError`` (without echoing the secret).
- ``encode_body(params)`` url-encodes a flat mapping (lists are refused: krakenex-style list
  values break the signature; send comma-joined strings).
- ``Credentials(api_key, secret_b64)`` holds the key pair; its ``repr``/``str`` never show either
  value, and ``headers(path, nonce, body)`` builds ``API-Key``/``API-Sign``.
- ``NonceSource(now_ms=…, start=…, persist=…)``: ``next()`` is lock-protected and strictly
  increasing: ``max(last + 1, now_ms())``. ``start`` is a persisted high-water mark (so a restart
  never reuses a nonce) and ``persist(n)``, when given, is called with every issued nonce *before*
  it is returned (the caller stores it durably). ``high_water`` is the last issued nonce.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from trading_brain.errors import ConfigError, OperationalError


def sign(url_path: str, nonce: int | str, postdata: str, secret_b64: str) -> str:
    """Kraken ``API-Sign`` for one private request."""
    try:
        key = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError):
        raise OperationalError("Kraken API secret is not valid base64") from None
    digest = hashlib.sha256((str(nonce) + postdata).encode()).digest()
    mac = hmac.new(key, url_path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def encode_body(params: Mapping[str, Any]) -> str:
    """Url-encode a flat mapping exactly as it will be sent (and signed)."""
    for k, v in params.items():
        if isinstance(v, list | tuple | set | dict):
            raise ConfigError(f"Kraken parameter {k!r} must be a scalar (comma-join lists)")
    return urlencode({k: _scalar(v) for k, v in params.items()})


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Credentials:
    """A Kraken API key pair; never printed."""

    __slots__ = ("_key", "_secret")

    def __init__(self, api_key: str, secret_b64: str) -> None:
        if not api_key or not secret_b64:
            raise OperationalError("Kraken API key and secret are both required")
        try:
            base64.b64decode(secret_b64, validate=True)
        except (binascii.Error, ValueError):
            raise OperationalError("Kraken API secret is not valid base64") from None
        self._key = api_key
        self._secret = secret_b64

    def headers(self, url_path: str, nonce: int, body: str) -> dict[str, str]:
        return {"API-Key": self._key, "API-Sign": sign(url_path, nonce, body, self._secret)}

    def __repr__(self) -> str:
        return "Credentials(api_key=***, secret=***)"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would copy secrets to wherever the pickle goes
        raise TypeError("Credentials cannot be pickled")


def _wall_ms() -> int:
    return int(time.time() * 1000)


class NonceSource:
    """Strictly increasing millisecond nonces, safe across threads (and restarts with ``start``)."""

    def __init__(
        self,
        *,
        now_ms: Callable[[], int] = _wall_ms,
        start: int = 0,
        persist: Callable[[int], None] | None = None,
    ) -> None:
        self._now_ms = now_ms
        self._last = int(start)
        self._persist = persist
        self._lock = threading.Lock()

    @property
    def high_water(self) -> int:
        with self._lock:
            return self._last

    def next(self) -> int:
        with self._lock:
            n = max(self._last + 1, int(self._now_ms()))
            if self._persist is not None:
                self._persist(n)
            self._last = n
            return n
