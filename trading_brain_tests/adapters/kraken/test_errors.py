"""The one mapping of Kraken error strings and transport failures into trading_brain.errors."""

from __future__ import annotations

import json

import pytest
import requests

from trading_brain.adapters.kraken import errors as kerrors
from trading_brain.errors import (
    ConfigError,
    DataError,
    OperationalError,
    OrderRejected,
    RateLimited,
    TemporaryError,
)


@pytest.mark.parametrize(
    ("message", "kind", "retryable"),
    [("EService:Unavailable", TemporaryError, True),
     ("EService:Busy", TemporaryError, True),
     ("EGeneral:Internal error:1234", TemporaryError, True),
     ("EGeneral:Too many requests", RateLimited, True),
     ("EAPI:Rate limit exceeded", RateLimited, True),
     ("EQuery:Unknown asset pair", ConfigError, False),
     ("EGeneral:Invalid arguments", ConfigError, False),
     ("EGeneral:Invalid arguments:volume", ConfigError, False),
     ("EAPI:Invalid key", OperationalError, False),
     ("EAPI:Invalid nonce", OperationalError, False),
     ("EGeneral:Permission denied", OperationalError, False),
     ("EOrder:Insufficient funds", OrderRejected, False),
     ("EService:Market in cancel_only mode", OrderRejected, False),
     ("EFoo:Something new", OperationalError, False)],
)
def test_kraken_error_strings(message: str, kind: type, retryable: bool) -> None:
    err = kerrors.from_kraken_errors("OHLC", [message], now_s=0.0)
    assert type(err) is kind
    assert kerrors.is_retryable(err) is retryable
    assert message in str(err) and "OHLC" in str(err)
    assert err.kraken_errors == [message]  # type: ignore[union-attr]


def test_throttled_honours_timestamp() -> None:
    err = kerrors.from_kraken_errors("Ticker", ["EService:Throttled: 1741500007"], 1741500000.0)
    assert isinstance(err, RateLimited) and err.retry_after == pytest.approx(7.0)
    past = kerrors.from_kraken_errors("Ticker", ["EService:Throttled:1741499000"], 1741500000.0)
    assert isinstance(past, RateLimited) and past.retry_after == 0.0
    odd = kerrors.from_kraken_errors("Ticker", ["EService:Throttled"], 1741500000.0)
    assert isinstance(odd, RateLimited) and odd.retry_after and odd.retry_after > 0


def test_warnings_alone_are_not_errors() -> None:
    assert kerrors.from_kraken_errors("Ticker", [], 0.0) is None
    assert kerrors.from_kraken_errors("Ticker", ["WGeneral:Deprecated"], 0.0) is None
    err = kerrors.from_kraken_errors("Ticker", ["WGeneral:x", "EService:Busy"], 0.0)
    assert isinstance(err, TemporaryError)


def _http_error(status: int, retry_after: str | None = None) -> requests.HTTPError:
    resp = requests.Response()
    resp.status_code = status
    if retry_after:
        resp.headers["Retry-After"] = retry_after
    return requests.HTTPError(f"{status}", response=resp)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [(requests.exceptions.ReadTimeout("slow"), TemporaryError),
     (requests.exceptions.ConnectionError("refused"), TemporaryError),
     (_http_error(502), TemporaryError), (_http_error(520), TemporaryError),
     (_http_error(503), TemporaryError), (_http_error(429), RateLimited),
     (_http_error(404), OperationalError), (_http_error(403), OperationalError),
     (requests.exceptions.JSONDecodeError("Expecting value", "{x", 1), DataError),
     (json.JSONDecodeError("Expecting value", "{x", 1), DataError),
     (requests.exceptions.MissingSchema("no scheme"), ConfigError),
     (requests.exceptions.InvalidURL("bad"), ConfigError),
     (RuntimeError("boom"), OperationalError)],
)
def test_transport_mapping(exc: BaseException, kind: type) -> None:
    err = kerrors.from_transport("Time", exc)
    assert type(err) is kind
    assert "Time" in str(err)


def test_http_429_retry_after_header() -> None:
    err = kerrors.from_transport("Time", _http_error(429, "3"))
    assert isinstance(err, RateLimited) and err.retry_after == 3.0
