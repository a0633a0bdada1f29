"""The one place where Kraken and transport failures become ``trading_brain.errors``.

Contract:
- ``from_kraken_errors(method, messages, now_s)`` maps the envelope's ``error`` list (strings
  ``<E|W><Category>:<Message>[:extra]``, matched by prefix) to one error of the tree:

  ========================================================  ==================================
  ``EService:Unavailable|Busy|Deadline elapsed``,            ``TemporaryError`` (retryable)
  ``EGeneral:Internal error``, ``EDatabase:Internal error``
  ``EGeneral:Too many requests``, ``EAPI:Rate limit          ``RateLimited`` (retryable;
  exceeded``, ``EOrder:Rate limit exceeded``,                 ``retry_after`` from the Throttled
  ``EService:Throttled: <unix ts>``                           timestamp when given)
  ``EQuery:Unknown asset pair|Unknown asset``,               ``ConfigError`` (fix the request)
  ``EGeneral:Invalid arguments…``, ``EGeneral:Unknown
  method``, ``EAPI:Bad request``
  ``EAPI:Invalid key|signature|nonce``, ``EGeneral:          ``OperationalError`` (a human)
  Permission denied|Temporary lockout``, anything unknown
  ``EOrder:*``, ``EService:Market in … mode``               ``OrderRejected`` (``reason`` = a
                                                             code from ``ORDER_REASONS``, e.g.
                                                             ``insufficient_funds``; else the
                                                             message text)
  ========================================================  ==================================

  Warnings (``W…``) alone are not errors.
- ``from_transport(method, exc)`` maps ``requests`` failures: timeouts and connection errors →
  ``TemporaryError``; HTTP 429 → ``RateLimited``; HTTP 5xx/520 → ``TemporaryError``; other HTTP
  statuses → ``OperationalError``; undecodable JSON → ``DataError``; a malformed URL →
  ``ConfigError`` (``kraken.rest_url``).
- ``is_retryable(err)`` is true exactly for ``TemporaryError`` (and so ``RateLimited``).
Callers raise the returned error ``from`` the vendor exception; every mapped error carries the
raw Kraken strings in ``kraken_errors`` (empty for transport errors). Messages never contain
request parameters, so a later private call cannot leak a key or signature through them.
"""

from __future__ import annotations

import requests

from trading_brain.errors import (
    ConfigError,
    DataError,
    OperationalError,
    OrderRejected,
    RateLimited,
    TemporaryError,
    TradingBrainError,
)

_TEMPORARY = (
    "EService:Unavailable",
    "EService:Busy",
    "EService:Deadline elapsed",
    "EGeneral:Internal error",
    "EDatabase:Internal error",
)
_RATE = ("EGeneral:Too many requests", "EAPI:Rate limit exceeded", "EOrder:Rate limit exceeded")
_CONFIG = (
    "EQuery:Unknown asset pair",
    "EQuery:Unknown asset",
    "EGeneral:Invalid arguments",
    "EGeneral:Unknown method",
    "EAPI:Bad request",
)
_AUTH = (
    "EAPI:Invalid key",
    "EAPI:Invalid signature",
    "EAPI:Invalid nonce",
    "EGeneral:Permission denied",
    "EGeneral:Temporary lockout",
)
_THROTTLED = "EService:Throttled"
ORDER_REASONS = {
    "EOrder:Insufficient funds": "insufficient_funds",
    "EOrder:Order minimum not met": "order_minimum",
    "EOrder:Cost minimum not met": "cost_minimum",
    "EOrder:Tick size check failed": "tick_size",
    "EOrder:Invalid price": "invalid_price",
    "EOrder:Invalid order": "invalid_order",
    "EOrder:Orders limit exceeded": "orders_limit",
    "EOrder:Unknown order": "unknown_order",
    "EOrder:Duplicate order": "duplicate_order",
    "EService:Market in": "market_restricted",
}


def order_reason(message: str) -> str:
    """Short machine code for an order rejection (the Kraken message text when unknown)."""
    for prefix, code in ORDER_REASONS.items():
        if message.startswith(prefix):
            return code
    return message.split(":", 1)[-1].strip()
_DEFAULT_THROTTLE_S = 5.0


def _tag(err: TradingBrainError, messages: list[str]) -> TradingBrainError:
    err.kraken_errors = list(messages)  # type: ignore[attr-defined]  # tagged on any error class
    return err


def _throttle_wait(message: str, now_s: float) -> float:
    """Seconds until the ``EService:Throttled: <unix ts>`` timestamp (a default when absent)."""
    tail = message[len(_THROTTLED):].lstrip(": ").strip()
    try:
        return max(0.0, float(tail) - now_s)
    except ValueError:
        return _DEFAULT_THROTTLE_S


def from_kraken_errors(method: str, messages: list[str], now_s: float) -> TradingBrainError | None:
    """Map an envelope's ``error`` list to one project error, or None if it holds only warnings."""
    errors = [str(m) for m in messages if not str(m).startswith("W")]
    if not errors:
        return None
    first = errors[0]
    text = f"Kraken {method}: {'; '.join(errors)}"
    if first.startswith(_THROTTLED):
        return _tag(RateLimited(text, retry_after=_throttle_wait(first, now_s)), errors)
    if first.startswith(_RATE):
        return _tag(RateLimited(text), errors)
    if first.startswith(_TEMPORARY):
        return _tag(TemporaryError(text), errors)
    if first.startswith(_CONFIG):
        return _tag(ConfigError(text), errors)
    if first.startswith(_AUTH):
        return _tag(OperationalError(text), errors)
    if first.startswith("EOrder:") or first.startswith("EService:Market in"):
        return _tag(OrderRejected(text, reason=order_reason(first)), errors)
    return _tag(OperationalError(f"{text} (unrecognised Kraken error)"), errors)


def from_http_status(method: str, status: int, retry_after: str | None = None) -> TradingBrainError:
    """Map a non-2xx HTTP status (the request did not properly reach Kraken)."""
    text = f"Kraken {method}: HTTP {status}"
    if status == 429:
        try:
            wait = float(retry_after) if retry_after else None
        except ValueError:
            wait = None
        return _tag(RateLimited(text, retry_after=wait), [])
    if status >= 500:
        return _tag(TemporaryError(text), [])
    return _tag(OperationalError(f"{text} (check kraken.rest_url)"), [])


def from_transport(method: str, exc: BaseException) -> TradingBrainError:
    """Map an exception raised by krakenex/requests while calling ``method``."""
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                  | requests.exceptions.InvalidSchema):
        return _tag(ConfigError(f"Kraken {method}: bad URL ({exc}); check kraken.rest_url"), [])
    if isinstance(exc, requests.exceptions.JSONDecodeError | ValueError) and not isinstance(
        exc, requests.exceptions.HTTPError
    ):
        return _tag(DataError(f"Kraken {method}: response is not valid JSON ({exc})"), [])
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        resp = exc.response
        return from_http_status(method, resp.status_code, resp.headers.get("Retry-After"))
    if isinstance(exc, requests.exceptions.Timeout):
        return _tag(TemporaryError(f"Kraken {method}: timed out"), [])
    if isinstance(exc, requests.exceptions.RequestException | OSError):
        return _tag(TemporaryError(f"Kraken {method}: network error: {type(exc).__name__}"), [])
    return _tag(OperationalError(f"Kraken {method}: unexpected {type(exc).__name__}: {exc}"), [])


def is_retryable(err: BaseException) -> bool:
    """True for errors an idempotent call may retry after back-off."""
    return isinstance(err, TemporaryError)
